import requests

def notify(msg):
    requests.post("https://hooks.example.com/notify", json={"text": msg})
