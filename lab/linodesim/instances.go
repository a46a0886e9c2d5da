package linodesim

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dnsroll/dnsroll"
)

// badRequest is a 400 with Linode's reason and field.
type badRequest struct{ reason, field string }

func (e *badRequest) Error() string { return e.reason }

// forbidden is a 403 on a field, for what a restricted user's grants
// deny.
type forbidden struct{ field string }

func (e *forbidden) Error() string { return "Unauthorized" }

// errTagForbidden refuses tags a restricted user may not add (mayTag).
var errTagForbidden = &forbidden{"tags"}

func (s *Sim) list(w http.ResponseWriter, r *http.Request) {
	page, size, err := pageParams(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.reason, err.field)
		return
	}
	match, sortFn, ferr := parseFilter(r.Header.Get("X-Filter"))
	if ferr != nil {
		writeErr(w, http.StatusBadRequest, ferr.Error(), "X-Filter")
		return
	}
	s.mu.Lock()
	now := s.now()
	var all []Instance
	for _, rec := range s.sorted() {
		if in := s.snapshot(rec, now); match(in) {
			all = append(all, in)
		}
	}
	s.mu.Unlock()
	sortFn(all)
	data := []apiInstance{}
	for i := (page - 1) * size; i < len(all) && i < page*size; i++ {
		data = append(data, render(all[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"data": data, "page": page, "pages": max(1, (len(all)+size-1)/size), "results": len(all),
	})
}

// pageParams reads page (default 1) and page_size (default 100, 25 to 500,
// as on Linode).
func pageParams(r *http.Request) (page, size int, err *badRequest) {
	page, size = 1, 100
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 {
			return 0, 0, &badRequest{"Must be an integer greater than 0", "page"}
		}
		page = n
	}
	if v := q.Get("page_size"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 25 || n > 500 {
			return 0, 0, &badRequest{"Must be an integer between 25 and 500", "page_size"}
		}
		size = n
	}
	return page, size, nil
}

// createRequest is the part of Linode's create body the simulator honours.
// RootPass is checked and then dropped: it is never stored or echoed.
type createRequest struct {
	Region         string   `json:"region"`
	Type           string   `json:"type"`
	Label          string   `json:"label"`
	Image          string   `json:"image"`
	RootPass       string   `json:"root_pass"`
	AuthorizedKeys []string `json:"authorized_keys"`
	Tags           []string `json:"tags"`
	Booted         *bool    `json:"booted"`
	FirewallID     int      `json:"firewall_id"`
	Metadata       struct {
		// UserData is base64, as on the wire; write-only, like RootPass.
		UserData string `json:"user_data"`
	} `json:"metadata"`
}

// maxUserData is how long Linode lets user data be once decoded: 16 KiB.
const maxUserData = 16384

// userData decodes the request's user data; nil when it has none.
// Linode's reason for a bad encoding is its own, word for word; the one
// for the size is ours, as the API reference gives only the limit.
func userData(req *createRequest) ([]byte, *badRequest) {
	if req.Metadata.UserData == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(req.Metadata.UserData)
	if err != nil {
		return nil, &badRequest{"user_data must be a base64 encoded string", "metadata.user_data"}
	}
	if len(b) > maxUserData {
		return nil, &badRequest{fmt.Sprintf("user_data must be at most %d bytes once decoded", maxUserData), "metadata.user_data"}
	}
	return b, nil
}

func (s *Sim) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !decode(w, r, &req) {
		return
	}
	ud, uderr := userData(&req)
	if err := cmp.Or(validateCreate(&req), uderr, s.validateOffer(&req)); err != nil {
		writeErr(w, http.StatusBadRequest, err.reason, err.field)
		return
	}
	s.mu.Lock()
	if len(req.Tags) > 0 && !s.mayTag() {
		s.mu.Unlock()
		writeErr(w, http.StatusForbidden, errTagForbidden.Error(), errTagForbidden.field)
		return
	}
	if s.labelTaken(req.Label, 0) {
		s.mu.Unlock()
		writeErr(w, http.StatusBadRequest, labelTakenReason, "label")
		return
	}
	now := s.now().UTC()
	id := s.nextID
	s.nextID++
	rec := &record{
		Instance: Instance{
			ID: id, Label: cmp.Or(req.Label, fmt.Sprintf("linode%d", id)), Tags: dedup(s.spelled(req.Tags)),
			IPv4: []string{"127.0.0.1"}, Region: req.Region, Type: req.Type, Image: req.Image,
			FirewallID: cmp.Or(req.FirewallID, s.defaultFirewall()), HasUserData: ud != nil, Created: now, Updated: now,
		},
		Phase: "create", PhaseAt: now, hooking: s.opts.OnCreate != nil,
	}
	if req.Booted != nil && !*req.Booted || req.Image == "" {
		rec.Phase = "create-offline"
	}
	s.insts[id] = rec
	in, err := s.snapshot(rec, now), s.save()
	s.mu.Unlock()
	if err == nil && s.opts.OnCreate != nil {
		var ip string
		if ip, err = s.opts.OnCreate(in, Boot{AuthorizedKeys: req.AuthorizedKeys, RootPass: req.RootPass, UserData: ud}); err == nil {
			s.mu.Lock()
			rec.IPv4, rec.hooking = []string{ip}, false
			if rec.Phase != "delete" {
				// Provisioning starts now that the VM has its address.
				rec.PhaseAt = s.now().UTC()
			}
			in, err = s.snapshot(rec, s.now()), s.save()
			s.mu.Unlock()
		} else {
			s.log.Error("linodesim: create hook", "label", in.Label, "error", err)
			s.mu.Lock()
			delete(s.insts, id)
			_ = s.save()
			s.mu.Unlock()
			writeErr(w, http.StatusInternalServerError, "Linode could not be created", "")
			return
		}
	}
	s.reply(w, in, err)
}

func validateCreate(req *createRequest) *badRequest {
	switch {
	case req.Region == "":
		return &badRequest{"region is required", "region"}
	case req.Type == "":
		return &badRequest{"type is required", "type"}
	case req.Image != "" && req.RootPass == "":
		return &badRequest{"root_pass is required when deploying from an image", "root_pass"}
	case req.RootPass != "" && (len(req.RootPass) < 7 || len(req.RootPass) > 128):
		return &badRequest{"root_pass must be 7-128 characters", "root_pass"}
	case req.RootPass != "" && weakPass(req.RootPass):
		return &badRequest{"Password does not meet strength requirement", "root_pass"}
	case req.FirewallID < 0:
		return &badRequest{"firewall_id must be a Firewall's ID", "firewall_id"}
	}
	if req.Label != "" {
		if err := validateLabel(req.Label); err != nil {
			return err
		}
	}
	for i, k := range req.AuthorizedKeys {
		typ, _, _ := strings.Cut(strings.TrimSpace(k), " ")
		if !slices.Contains(keyTypes, typ) && !strings.HasPrefix(typ, "ecdsa-sha2-nistp") {
			return &badRequest{fmt.Sprintf("SSH Key %d key-type must be ssh-dss, ssh-rsa, ecdsa-sha2-nistp, or ssh-ed25519.", i+1), "authorized_keys"}
		}
	}
	return validateTags(req.Tags)
}

// weakPass approximates the strength score Linode gives a root password
// (its own, which it does not publish): under 5 distinct characters, or
// under 50 bits when every character is drawn at random from the classes
// it uses, is weak. It refuses what Linode surely refuses, not all of it:
// a dictionary word padded long enough passes here.
func weakPass(p string) bool {
	pool := 0
	for _, class := range []struct {
		size int
		has  func(r rune) bool
	}{
		{26, unicode.IsLower}, {26, unicode.IsUpper}, {10, unicode.IsDigit},
		{33, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }},
	} {
		if strings.ContainsFunc(p, class.has) {
			pool += class.size
		}
	}
	distinct := map[rune]bool{}
	for _, r := range p {
		distinct[r] = true
	}
	return len(distinct) < 5 || float64(utf8.RuneCountInString(p))*math.Log2(float64(pool)) < 50
}

// keyTypes are the SSH key types Linode installs from authorized_keys,
// besides ecdsa-sha2-nistp*: its reason for others names the older list.
var keyTypes = []string{"ssh-dss", "ssh-rsa", "ssh-ed25519", "sk-ecdsa-sha2-nistp256@openssh.com"}

// validateLabel applies Linode's label rule (dnsroll.CheckLabel), with
// the real API's 400 reason.
func validateLabel(l string) *badRequest {
	if err := dnsroll.CheckLabel(l); err != nil {
		if len(l) < 3 || len(l) > 64 {
			return &badRequest{"Length must be 3-64 characters", "label"}
		}
		return &badRequest{"Label must begin with a letter, end with a letter or number, include only ASCII letters, " +
			"numbers, dashes, underscores and periods, and must not contain two dashes, underscores or periods in a row", "label"}
	}
	return nil
}

func validateTags(tags []string) *badRequest {
	for _, t := range tags {
		if len(t) < 3 || len(t) > 50 {
			return &badRequest{fmt.Sprintf("Tag %q: length must be 3-50 characters", t), "tags"}
		}
	}
	return nil
}

// hasTag reports whether the instance has tag, in any letter case.
func (rec *record) hasTag(tag string) bool {
	return slices.ContainsFunc(rec.Tags, func(t string) bool { return strings.EqualFold(t, tag) })
}

// labelTakenReason is Linode's 400 reason for a taken label, word for
// word ("linodes" in lower case): clients match it whole.
const labelTakenReason = "Label must be unique among your linodes"

// labelTaken reports whether another instance than self has label, in
// any case, as Linode's labels are unique in an account whatever their
// case; the caller holds s.mu.
func (s *Sim) labelTaken(label string, self int) bool {
	for _, rec := range s.insts {
		if strings.EqualFold(rec.Label, label) && rec.ID != self {
			return true
		}
	}
	return false
}

func (s *Sim) get(w http.ResponseWriter, r *http.Request) {
	s.withInstance(w, r, func(rec *record) (bool, error) { return false, nil })
}

func (s *Sim) update(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Label string    `json:"label"`
		Tags  *[]string `json:"tags"`
	}
	if !decode(w, r, &req) {
		return
	}
	s.withInstance(w, r, func(rec *record) (bool, error) {
		if rec.Phase == "delete" {
			return false, &badRequest{"Linode busy.", ""}
		}
		// Every check comes before any change: a refused PUT changes
		// nothing, as on Linode.
		rename := req.Label != "" && req.Label != rec.Label
		if rename {
			if err := validateLabel(req.Label); err != nil {
				return false, err
			}
			if s.labelTaken(req.Label, rec.ID) {
				return false, &badRequest{labelTakenReason, "label"}
			}
		}
		if req.Tags != nil {
			if err := validateTags(*req.Tags); err != nil {
				return false, err
			}
			if !s.mayTag() && slices.ContainsFunc(*req.Tags, func(t string) bool { return !rec.hasTag(t) }) {
				return false, errTagForbidden
			}
			rec.Tags = dedup(s.spelled(*req.Tags))
		}
		if rename {
			rec.Label = req.Label
		}
		return true, nil
	})
}

func (s *Sim) power(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.PathValue("id"))
		s.mu.Lock()
		rec, ok := s.insts[id]
		var err error
		busy := false
		if ok {
			now := s.now().UTC()
			// As on Linode, only a running or offline instance takes a
			// power action; one being deleted stays deleted.
			if st := s.status(rec, now); st != "running" && st != "offline" {
				busy = true
			} else {
				rec.Phase, rec.PhaseAt, rec.Updated = action, now, now
				err = s.save()
			}
		}
		s.mu.Unlock()
		switch {
		case !ok:
			writeErr(w, http.StatusNotFound, "Not found", "")
		case busy:
			writeErr(w, http.StatusBadRequest, "Linode busy.", "")
		case err != nil:
			s.reply(w, Instance{}, err)
		default:
			writeJSON(w, http.StatusOK, struct{}{})
		}
	}
}

// lock takes the lock and returns the instance in the path, or answers 404
// and returns false, unlocked, when there is none.
func (s *Sim) lock(w http.ResponseWriter, r *http.Request) (*record, bool) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	rec, ok := s.insts[id]
	if !ok {
		s.mu.Unlock()
		writeErr(w, http.StatusNotFound, "Not found", "")
	}
	return rec, ok
}

func (s *Sim) delete(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lock(w, r)
	if !ok {
		return
	}
	if rec.Phase == "delete" {
		// Deleting an instance that is being deleted changes nothing.
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if l := s.lockOn(rec.ID); l != nil {
		s.mu.Unlock()
		writeErr(w, http.StatusBadRequest, lockedReason(l), "")
		return
	}
	rec.Phase, rec.PhaseAt = "delete", s.now()
	in, err := s.snapshot(rec, s.now()), s.save()
	s.purge(s.now())
	s.mu.Unlock()
	if d := s.opts.DeleteDelay; d > 0 {
		// Gone after the delay even when no request comes to notice.
		time.AfterFunc(d, func() {
			s.mu.Lock()
			s.purge(s.now())
			s.mu.Unlock()
		})
	}
	if s.opts.OnDelete != nil {
		s.opts.OnDelete(in)
	}
	if err != nil {
		s.reply(w, in, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// withInstance looks up the instance in the path, lets fn inspect or change
// it under the lock, saves if fn changed it, and replies with the instance.
func (s *Sim) withInstance(w http.ResponseWriter, r *http.Request, fn func(rec *record) (changed bool, err error)) {
	rec, ok := s.lock(w, r)
	if !ok {
		return
	}
	changed, err := fn(rec)
	if changed && err == nil {
		rec.Updated = s.now().UTC()
		err = s.save()
	}
	in := s.snapshot(rec, s.now())
	s.mu.Unlock()
	s.reply(w, in, err)
}

// reply writes the instance, or the error a handler met.
func (s *Sim) reply(w http.ResponseWriter, in Instance, err error) {
	var bad *badRequest
	var denied *forbidden
	switch {
	case errors.As(err, &bad):
		writeErr(w, http.StatusBadRequest, bad.reason, bad.field)
	case errors.As(err, &denied):
		writeErr(w, http.StatusForbidden, denied.Error(), denied.field)
	case err != nil:
		s.log.Error("linodesim: saving state", "err", err)
		writeErr(w, http.StatusInternalServerError, "Simulator could not save its state", "")
	default:
		writeJSON(w, http.StatusOK, render(in))
	}
}
