// Builds dist/*.html from content/*.md.
const fs = require('fs');
const path = require('path');
const escapeHtml = require('escape-html');
const { marked } = require('marked');

const SRC = path.join(__dirname, 'content');
const OUT = path.join(__dirname, 'dist');

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
${body}
</body>
</html>
`;
}

fs.mkdirSync(OUT, { recursive: true });
for (const file of fs.readdirSync(SRC).filter((f) => f.endsWith('.md'))) {
  const md = fs.readFileSync(path.join(SRC, file), 'utf8');
  const title = (md.match(/^#\s+(.+)$/m) || [, file])[1];
  const html = page(title, marked.parse(md));
  fs.writeFileSync(path.join(OUT, file.replace(/\.md$/, '.html')), html);
  console.log(`built ${file}`);
}
