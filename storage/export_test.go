package storage

import (
	"net/http"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// SetTransport makes m send its requests through rt, for tests that count
// them.
func SetTransport(m *MinIO, rt http.RoundTripper) error {
	c, err := minio.New(m.cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(m.cfg.AccessKey, m.cfg.SecretKey, ""),
		Secure:    m.cfg.UseTLS,
		Region:    m.cfg.Region,
		Transport: rt,
	})
	if err != nil {
		return err
	}
	m.client = c
	return nil
}
