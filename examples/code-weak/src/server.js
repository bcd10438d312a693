// Notes assistant: an Express API over Postgres with an OpenAI helper, as an
// LLM assistant scaffolds it. tollgate example micro app: every weakness below
// is deliberate and named in a comment; the "safe" ones are look-alikes that
// must not be reported.
const crypto = require('crypto');
const { exec, execFile } = require('child_process');
const express = require('express');
const cors = require('cors');
const { Pool } = require('pg');
const OpenAI = require('openai');

const app = express();
const pool = new Pool({ connectionString: process.env.DATABASE_URL });
const openai = new OpenAI({ apiKey: process.env.OPENAI_API_KEY });

// WEAKNESS cors (CWE-942): any origin, with credentials.
app.use(cors({ origin: '*', credentials: true }));
app.use(express.json());
app.use(express.static('public'));

// WEAKNESS weak-hash (CWE-328): MD5 password hashing.
function hashPassword(password) {
  return crypto.createHash('md5').update(password).digest('hex');
}

app.post('/signup', async (req, res) => {
  const { email, password } = req.body;
  // safe: parameterised query.
  await pool.query('INSERT INTO users (email, password_hash) VALUES ($1, $2)', [email, hashPassword(password)]);
  res.status(201).json({ ok: true });
});

app.get('/notes/search', async (req, res) => {
  // WEAKNESS sql-injection (CWE-89): SQL built from req.query.
  const sql = `SELECT id, title, body FROM notes WHERE title LIKE '%${req.query.q}%'`;
  const { rows } = await pool.query(sql);
  res.json(rows);
});

app.get('/notes/:id', async (req, res) => {
  // safe: parameterised query.
  const { rows } = await pool.query('SELECT id, title, body FROM notes WHERE id = $1', [req.params.id]);
  return rows.length ? res.json(rows[0]) : res.sendStatus(404);
});

app.post('/notes/export', (req, res) => {
  // WEAKNESS command-injection (CWE-78): child_process.exec of request data.
  exec('tar -czf /tmp/export.tgz notes/' + req.body.folder, (err) => {
    if (err) return res.status(500).json({ error: 'export failed' });
    return res.download('/tmp/export.tgz');
  });
});

app.get('/notes/history', (req, res) => {
  const n = Number.parseInt(req.query.n, 10) || 10;
  // safe: execFile with an argument array, no shell.
  execFile('git', ['log', '--oneline', '-n', String(n), '--', 'notes/'], (err, stdout) => {
    if (err) return res.status(500).json({ error: 'history failed' });
    return res.type('text/plain').send(stdout);
  });
});

app.post('/assistant', async (req, res) => {
  const completion = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      // WEAKNESS llm-prompt-injection (LLM01): request data concatenated into the system prompt.
      { role: 'system', content: 'You are the notes assistant for ' + req.body.team + '. Answer briefly.' },
      // safe: request data in the user message, where it belongs.
      { role: 'user', content: req.body.question },
    ],
  });
  res.json({ answer: completion.choices[0].message.content });
});

app.post('/assistant/calc', async (req, res) => {
  const completion = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'Turn the question into one JavaScript arithmetic expression. Reply with the expression only.' },
      { role: 'user', content: req.body.question },
    ],
  });
  const expression = completion.choices[0].message.content;
  // WEAKNESS llm-output (LLM02, CWE-94): model output reaches eval.
  const result = eval(expression);
  res.json({ expression, result });
});

app.listen(process.env.PORT || 3000);
