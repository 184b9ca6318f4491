from django.db import models


class Ticket(models.Model):
    subject = models.CharField(max_length=200)
    requester = models.EmailField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"#{self.pk} {self.subject}"


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, related_name="comments", on_delete=models.CASCADE)
    author = models.EmailField()
    body = models.TextField()
