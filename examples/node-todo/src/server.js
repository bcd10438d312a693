// Express todo API: GET/POST /todos, GET/PATCH/DELETE /todos/:id.
const express = require('express');
const cors = require('cors');
const morgan = require('morgan');

const config = require('./config');
const store = require('./store');

const app = express();
app.use(cors());
app.use(express.json());
app.use(morgan(config.logFormat));

app.get('/healthz', (req, res) => res.json({ ok: true }));

app.get('/todos', (req, res) => res.json(store.list(req.query)));

app.post('/todos', (req, res) => {
  if (!req.body || !req.body.title) {
    return res.status(400).json({ error: 'title is required' });
  }
  return res.status(201).json(store.create(req.body));
});

app.get('/todos/:id', (req, res) => {
  const todo = store.get(req.params.id);
  return todo ? res.json(todo) : res.sendStatus(404);
});

app.patch('/todos/:id', (req, res) => {
  const todo = store.update(req.params.id, req.body || {});
  return todo ? res.json(todo) : res.sendStatus(404);
});

app.delete('/todos/:id', (req, res) => {
  return store.remove(req.params.id) ? res.sendStatus(204) : res.sendStatus(404);
});

app.listen(config.port, () => {
  console.log(`todo API listening on :${config.port}`);
});
