from django.db import models


class Ticket(models.Model):
    subject = models.CharField(max_length=200)


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE)
    body = models.TextField()
