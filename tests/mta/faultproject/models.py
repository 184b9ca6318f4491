from django.db import models


class Handled(models.Model):
    """
    One committed run of the view for a message. Nothing makes it unique:
    the count of rows per message is what the fault-injection run checks.
    """

    number = models.PositiveIntegerField(db_index=True)
    message_id = models.CharField(max_length=255)
    queue_id = models.CharField(max_length=64, blank=True)
    # The view's attempt (see plan.Ledger.count), and the process it ran in.
    attempt = models.PositiveIntegerField()
    pid = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Message {self.number}, attempt {self.attempt} (queue id {self.queue_id})"
