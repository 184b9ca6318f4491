from django.db import models


class Ticket(models.Model):
    subject = models.CharField(max_length=200)


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE)
    body = models.TextField()


class Delivery(models.Model):
    """What a view saw, for tests that run real processes."""

    sender = models.CharField(max_length=200, null=True)
    recipient = models.CharField(max_length=200)
    subaddress = models.CharField(max_length=200)
    original_recipient = models.CharField(max_length=200)
    queue_id = models.CharField(max_length=200)
    client_address = models.CharField(max_length=200)
    size = models.IntegerField(null=True)
    transport = models.CharField(max_length=20)
    subject = models.CharField(max_length=200)
    raw = models.BinaryField()
