package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/dnsroll/dnsroll"
	"github.com/dnsroll/dnsroll/config"
)

// NotifyInput is one event for one webhook.
type NotifyInput struct {
	Webhook  config.Webhook `json:"webhook"`
	Event    string         `json:"event"`
	Fleet    string         `json:"fleet"`
	Revision string         `json:"revision,omitempty"`
	Phase    string         `json:"phase"`
	Reason   string         `json:"reason,omitempty"`
	// ApprovalGate is the gate an awaiting_approval event is for
	// (workflows.Status.ApprovalGate), for a receiver that approves to
	// name it.
	ApprovalGate int `json:"approval_gate,omitempty"`
	// Seq orders a rollout's events; with the run ID it is the delivery ID
	// receivers use to drop duplicates from retries.
	Seq int `json:"seq"`
}

// Notification is the JSON body a webhook receives.
type Notification struct {
	Event      string `json:"event"`
	Fleet      string `json:"fleet"`
	RolloutID  string `json:"rollout_id"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Revision   string `json:"revision,omitempty"`
	Phase      string `json:"phase"`
	Reason     string `json:"reason,omitempty"`
	// ApprovalGate is set on awaiting_approval, where the run numbers its
	// gates: an approve naming it opens this gate and no later one.
	ApprovalGate int       `json:"approval_gate,omitempty"`
	WebUI        string    `json:"web_ui"`
	Seq          int       `json:"seq"`
	SentAt       time.Time `json:"sent_at"`
}

// Notify POSTs one event to one webhook. Any 2xx is delivered; anything else
// is an error that Temporal retries. The workflow never fails because of it.
func (a *Activities) Notify(ctx context.Context, in NotifyInput) (StepResult, error) {
	defer keepAlive(ctx, "notifying "+in.Event)()
	info := activity.GetInfo(ctx)
	n := Notification{
		Event: in.Event, Fleet: in.Fleet, Revision: in.Revision, Phase: in.Phase, Reason: in.Reason, ApprovalGate: in.ApprovalGate, Seq: in.Seq,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		RolloutID: info.WorkflowExecution.ID + ":" + info.WorkflowExecution.RunID,
		SentAt:    time.Now().UTC(),
	}
	n.WebUI = a.webUILink(info.Namespace, n.WorkflowID, n.RunID)
	body, err := json.Marshal(n)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	hook, err := a.webhook(in)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	target, err := webhookURL(hook)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	secret, err := webhookSecret(hook)
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return StepResult{}, failure(ctx, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Dnsroll-Event", in.Event)
	req.Header.Set("X-Dnsroll-Delivery", fmt.Sprintf("%s/%d", n.RunID, in.Seq))
	if secret != nil {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		req.Header.Set("X-Dnsroll-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	client := a.HTTPClient
	if client == nil {
		// A redirect is not followed: it would carry the body and its
		// signature wherever the receiver pointed; its 3xx fails the
		// delivery below.
		client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL may embed a token in its query: report only the host.
		return StepResult{}, failure(ctx, fmt.Errorf("webhook %s (%s): %v", in.Webhook.Name, redact(target), unwrapURLError(err)))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode/100 == 3 {
			// No retry follows a redirect either.
			return StepResult{}, failure(ctx, dnsroll.Errorf(dnsroll.EINVALID, "webhook %s (%s): HTTP %d, a redirect, which is not followed: set the webhook's url to where it leads", in.Webhook.Name, redact(target), resp.StatusCode))
		}
		return StepResult{}, failure(ctx, fmt.Errorf("webhook %s (%s): HTTP %d", in.Webhook.Name, redact(target), resp.StatusCode))
	}
	return StepResult{Attempt: attempt(ctx), Note: in.Event}, nil
}

// webhook is in's webhook as the worker's fleet file has it. History
// carries only its name (config.Fleet.ForHistory); inputs from before
// names existed carry the URL itself, and from before the variables'
// names left history, url_env.
func (a *Activities) webhook(in NotifyInput) (config.Webhook, error) {
	w := in.Webhook
	if w.URL != "" || w.URLEnv != "" {
		return w, nil
	}
	fleet, err := a.Fleets(in.Fleet)
	if err != nil {
		return w, err
	}
	for _, fw := range fleet.Notifications.Webhooks {
		if fw.Name == w.Name {
			return fw, nil
		}
	}
	return w, dnsroll.Errorf(dnsroll.EINVALID, "notifications.webhooks: fleet %s has no webhook named %q any more", in.Fleet, w.Name)
}

// webhookURL is where w receives its POSTs: its url, or the worker's
// environment variable its url_env names.
func webhookURL(w config.Webhook) (string, error) {
	if w.URLEnv != "" {
		u := os.Getenv(w.URLEnv)
		if u == "" {
			return "", dnsroll.Errorf(dnsroll.EINVALID, "notifications.webhooks: webhook %s: url_env %s is not set on this worker", w.Name, w.URLEnv)
		}
		if err := config.CheckWebhookURL(u); err != nil {
			return "", dnsroll.Errorf(dnsroll.EINVALID, "notifications.webhooks: webhook %s: $%s %v", w.Name, w.URLEnv, err)
		}
		return u, nil
	}
	return w.URL, nil
}

// webhookSecret is the HMAC key that w's secret_env names, or nil when it
// names none. A secret_env whose variable is unset or empty on this worker
// is an error, as an unset url_env is: signing with an empty key would
// send a signature anyone can compute, looking like a real one.
func webhookSecret(w config.Webhook) ([]byte, error) {
	if w.SecretEnv == "" {
		return nil, nil
	}
	secret := os.Getenv(w.SecretEnv)
	if secret == "" {
		return nil, dnsroll.Errorf(dnsroll.EINVALID, "notifications.webhooks: webhook %s: secret_env %s is not set on this worker", w.Name, w.SecretEnv)
	}
	return []byte(secret), nil
}

func (a *Activities) webUILink(namespace, workflowID, runID string) string {
	return dnsroll.WebUILink(a.WebUIURL, namespace, workflowID, runID)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
