"""Tiny Flask notes app: list, create and delete notes stored in a JSON file."""
import json
import os
import uuid
from pathlib import Path

import requests
from dotenv import load_dotenv
from flask import Flask, abort, jsonify, redirect, render_template, request, url_for

load_dotenv()

DATA_FILE = Path(os.environ.get("NOTES_FILE", "notes.json"))
WEBHOOK_URL = os.environ.get("NOTES_WEBHOOK_URL")  # optional, e.g. a chat webhook

app = Flask(__name__)


def load_notes():
    if DATA_FILE.exists():
        return json.loads(DATA_FILE.read_text())
    return []


def save_notes(notes):
    DATA_FILE.write_text(json.dumps(notes, indent=2))


@app.get("/")
def index():
    return render_template("index.html", notes=load_notes())


@app.post("/notes")
def create_note():
    text = (request.form.get("text") or "").strip()
    if not text:
        abort(400)
    notes = load_notes()
    note = {"id": uuid.uuid4().hex, "text": text}
    notes.append(note)
    save_notes(notes)
    if WEBHOOK_URL:
        requests.post(WEBHOOK_URL, json={"text": f"New note: {text}"}, timeout=5)
    return redirect(url_for("index"))


@app.post("/notes/<note_id>/delete")
def delete_note(note_id):
    save_notes([n for n in load_notes() if n["id"] != note_id])
    return redirect(url_for("index"))


@app.get("/api/notes")
def api_notes():
    return jsonify(load_notes())


if __name__ == "__main__":
    app.run(debug=os.environ.get("FLASK_DEBUG") == "1")
