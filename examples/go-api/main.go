// Command go-api is a tiny greeting service: GET /hello answers in the
// caller's preferred language (Accept-Language), using greetings loaded
// from config.yaml.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

type config struct {
	Addr      string            `yaml:"addr"`
	Greetings map[string]string `yaml:"greetings"`
}

func loadConfig(path string) (*config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := &config{Addr: ":8080"}
	if err := yaml.Unmarshal(b, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func main() {
	cfg, err := loadConfig("config.yaml")
	if err != nil {
		log.Fatalf("config: %v", err)
	}

	var tags []language.Tag
	var texts []string
	for tag, text := range cfg.Greetings {
		tags = append(tags, language.Make(tag))
		texts = append(texts, text)
	}
	matcher := language.NewMatcher(tags)

	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		_, idx := language.MatchStrings(matcher, r.Header.Get("Accept-Language"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"message": texts[idx]})
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})

	log.Printf("listening on %s", cfg.Addr)
	log.Fatal(http.ListenAndServe(cfg.Addr, nil))
}
