package activities

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tollgate/tollgate/activities/deployers"
)

// Events emits tollgate's events: each to NATS (the events stream,
// tollgate.events.>) and, when WebhookURL is set, to the events webhook,
// signed like the deploy webhook (deployers.SignRequest; receivers check it
// with deployers.VerifySignature). The re-match's verdict events and the
// idle-app TTL's lifecycle events go through it.
type Events struct {
	Publisher     Publisher
	WebhookURL    string
	WebhookSecret []byte
	HTTP          *http.Client
	Logger        *slog.Logger
}

// Emit publishes body on subject, deduplicated by the stream on msgID (a
// retried activity publishes once), then posts it to the webhook. A failed
// delivery fails the activity, which Temporal retries.
func (e *Events) Emit(ctx context.Context, subject, msgID string, body []byte) error {
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, msgID)
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := e.Publisher.PublishMsg(pctx, msg); err != nil {
		return fmt.Errorf("publish event to %s: %w", subject, err)
	}
	if e.WebhookURL == "" {
		return nil
	}
	return e.postWebhook(ctx, body)
}

// webhookClient is e.HTTP (or a default client) that never follows a
// redirect: the signed event goes to the configured URL or nowhere, and a
// 3xx answer is a failed delivery.
func (e *Events) webhookClient() *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if e.HTTP != nil {
		c2 := *e.HTTP
		c = &c2
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// postWebhook sends an event to the events webhook, signed; a non-2xx
// answer (a redirect too) fails the activity, which Temporal retries. The
// URL appears in errors and logs only redacted.
func (e *Events) postWebhook(ctx context.Context, body []byte) error {
	where := redactURL(e.WebhookURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("events webhook %s: build request: %w", where, unwrapURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	deployers.SignRequest(req.Header, e.WebhookSecret, body, time.Now())
	resp, err := e.webhookClient().Do(req)
	if err != nil {
		err = fmt.Errorf("events webhook %s: %w", where, unwrapURLError(err))
		orDiscard(e.Logger).WarnContext(ctx, "events webhook delivery failed", "url", where, "error", err)
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("events webhook %s: %s", where, resp.Status)
		orDiscard(e.Logger).WarnContext(ctx, "events webhook refused the event", "url", where, "status", resp.StatusCode)
		return err
	}
	return nil
}
