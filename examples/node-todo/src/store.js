// In-memory todo store.
const _ = require('lodash');
const { v4: uuidv4 } = require('uuid');

const todos = new Map();

function list({ done } = {}) {
  let items = Array.from(todos.values());
  if (done !== undefined) {
    items = _.filter(items, { done: done === 'true' });
  }
  return _.sortBy(items, 'createdAt');
}

function get(id) {
  return todos.get(id);
}

function create({ title }) {
  const todo = { id: uuidv4(), title: String(title), done: false, createdAt: new Date().toISOString() };
  todos.set(todo.id, todo);
  return todo;
}

function update(id, patch) {
  const todo = todos.get(id);
  if (!todo) return undefined;
  _.merge(todo, _.pick(patch, ['title', 'done']));
  return todo;
}

function remove(id) {
  return todos.delete(id);
}

module.exports = { list, get, create, update, remove };
