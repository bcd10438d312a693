// Browser side of the notes assistant: lists notes and shows answers.
async function showNote(id) {
  const res = await fetch('/notes/' + encodeURIComponent(id));
  const note = await res.json();
  // safe: textContent does not parse HTML.
  document.getElementById('note-title').textContent = note.title;
  // WEAKNESS xss (CWE-79): stored note body written with innerHTML.
  document.getElementById('note-body').innerHTML = note.body;
}

async function ask(question) {
  const res = await fetch('/assistant', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ team: 'notes', question }),
  });
  const { answer } = await res.json();
  document.getElementById('answer').textContent = answer;
}

window.showNote = showNote;
window.ask = ask;
