package corpus

import (
	"embed"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"strings"
)

// code holds each ecosystem's handler code: a small, clean CRUD service in
// the shape LLM assistants scaffold (Express with better-sqlite3, Flask
// blueprints with sqlite3, net/http with database/sql), so the fast
// stage's code scanner has real handlers, queries and validation to parse.
// Every app serves one to six resources; each resource adds one route file
// made from the resource template. The code holds no weakness and no
// secret: a clean app's expected verdict stays pass.
//
//go:embed code
var code embed.FS

type resource struct{ plural, singular string }

var resources = []resource{
	{"todos", "todo"}, {"notes", "note"}, {"projects", "project"}, {"tags", "tag"},
	{"comments", "comment"}, {"bookmarks", "bookmark"}, {"invoices", "invoice"},
	{"events", "event"}, {"contacts", "contact"}, {"tasks", "task"},
}

// codeFiles returns an app's source files for its ecosystem ("npm", "pypi"
// or "go"), keyed by path under the app. r draws the app's resources.
func codeFiles(r *rand.Rand, ecosystem, app string) map[string]string {
	dir := map[string]string{"npm": "node", "pypi": "py", "go": "go"}[ecosystem]
	var picked []resource
	for _, i := range r.Perm(len(resources))[:1+r.IntN(6)] {
		picked = append(picked, resources[i])
	}
	var lines struct{ requires, mounts, imports, blueprints, routes, tables strings.Builder }
	ddl := func(table, columns string) string {
		return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", table, columns)
	}
	tables := []string{
		ddl("users", "id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL"),
		ddl("sessions", "token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), expires_at INTEGER NOT NULL"),
	}
	for _, res := range picked {
		tables = append(tables, ddl(res.plural, "id INTEGER PRIMARY KEY AUTOINCREMENT, owner INTEGER NOT NULL REFERENCES users(id), title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL"))
		fmt.Fprintf(&lines.requires, "const %sRoutes = require(\"./routes/%s\");\n", res.plural, res.plural)
		fmt.Fprintf(&lines.mounts, "app.use(\"/api/%s\", %sRoutes(db));\n", res.plural, res.plural)
		fmt.Fprintf(&lines.imports, "from .%s import %s\n", res.plural, res.plural)
		fmt.Fprintf(&lines.blueprints, "    app.register_blueprint(%s)\n", res.plural)
		fmt.Fprintf(&lines.routes, "\t(&%sAPI{db: db}).routes(mux, auth)\n", res.plural)
	}
	for _, t := range tables {
		switch dir {
		case "node":
			fmt.Fprintf(&lines.tables, "  %q,\n", t)
		case "py":
			fmt.Fprintf(&lines.tables, "    %q,\n", t)
		case "go":
			fmt.Fprintf(&lines.tables, "\t`%s`,\n", t)
		}
	}
	common := []string{
		"{{app}}", app, "{{pkg}}", strings.ReplaceAll(app, "-", ""),
		"{{requires}}", lines.requires.String(), "{{mounts}}", lines.mounts.String(),
		"{{imports}}", lines.imports.String(), "{{blueprints}}", lines.blueprints.String(),
		"{{routes}}", lines.routes.String(), "{{tables}}", lines.tables.String(),
	}
	files := map[string]string{}
	root := path.Join("code", dir)
	entries, err := code.ReadDir(path.Join(root, "src"))
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	var walk func(rel string, entries []fs.DirEntry)
	walk = func(rel string, entries []fs.DirEntry) {
		for _, e := range entries {
			name := path.Join(rel, e.Name())
			if e.IsDir() {
				sub, _ := code.ReadDir(path.Join(root, name))
				walk(name, sub)
				continue
			}
			raw, _ := code.ReadFile(path.Join(root, name))
			name = strings.TrimSuffix(name, ".tmpl") // keeps go vet and gofmt off the templates
			base := strings.TrimSuffix(path.Base(name), path.Ext(name))
			if base != "resource" {
				files[name] = strings.NewReplacer(common...).Replace(string(raw))
				continue
			}
			for _, res := range picked {
				out := path.Join(path.Dir(name), res.plural+path.Ext(name))
				files[out] = strings.NewReplacer(append([]string{"{{resource}}", res.plural, "{{singular}}", res.singular}, common...)...).Replace(string(raw))
			}
		}
	}
	walk("src", entries)
	return files
}
