package linodesim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
)

// profileUser is the username GET /v4/profile gives the token's user.
const profileUser = "dnsroll"

// Grants make the token's user a restricted one (Sim.Restrict): what the
// user may do, as GET /v4/profile/grants lists it.
type Grants struct {
	// AddLinodes is the global grant to create Linodes.
	AddLinodes bool
	// AccountAccess is the global account_access grant: "read_write",
	// "read_only" or "" (none). Linode lets a restricted user add tags to
	// a Linode, at its create or later, only with read_write (its API
	// reference for the create and for PUT; Cloud Manager greys out the
	// tag button on it).
	AccountAccess string
	// ReadOnly are the labels of instances the user may read but not
	// change or delete. Every other instance that exists when Restrict is
	// called, and every one the user creates later, is read_write.
	ReadOnly []string
	// Unlisted are the labels of instances the user sees but the grants
	// leave out, as on an account whose access is role-based (Linode's
	// Identity and Access), where the grants do not describe it.
	Unlisted []string
}

// restriction is Grants with the read-only instances resolved to IDs:
// Linode grants by ID, so a rename keeps the grant.
type restriction struct {
	addLinodes    bool
	accountAccess string
	readOnly      map[int]bool
	unlisted      map[int]bool
}

// Restrict makes the token's user a restricted one with grants g, from
// now on: GET /v4/profile says so, GET /v4/profile/grants lists g, and
// what g does not allow is answered 403 "Unauthorized", as Linode does.
func (s *Sim) Restrict(g Grants) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &restriction{addLinodes: g.AddLinodes, accountAccess: g.AccountAccess, readOnly: map[int]bool{}, unlisted: map[int]bool{}}
	for id, rec := range s.insts {
		r.readOnly[id] = slices.Contains(g.ReadOnly, rec.Label)
		r.unlisted[id] = slices.Contains(g.Unlisted, rec.Label)
	}
	s.restricted = r
}

// Unrestrict makes the token's user an unrestricted one again, as it is
// before Restrict.
func (s *Sim) Unrestrict() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restricted = nil
}

// getProfile serves the token's user's profile, as much of it as
// dnsroll reads.
func (s *Sim) getProfile(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	restricted := s.restricted != nil
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"username": profileUser, "email": profileUser + "@example.com", "restricted": restricted})
}

// getGrants serves a restricted user's grants; an unrestricted user has
// none to list, and Linode answers 204 No Content.
func (s *Sim) getGrants(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restricted == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	linodes := []map[string]any{}
	for _, rec := range s.sorted() {
		if s.restricted.unlisted[rec.ID] {
			continue
		}
		perm := "read_write"
		if s.restricted.readOnly[rec.ID] {
			perm = "read_only"
		}
		linodes = append(linodes, map[string]any{"id": rec.ID, "label": rec.Label, "permissions": perm})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"global": map[string]any{"add_linodes": s.restricted.addLinodes, "account_access": cmp.Or[any](s.restricted.accountAccess, nil)},
		"linode": linodes, "firewall": []any{}, "image": []any{}, "domain": []any{}, "nodebalancer": []any{},
		"stackscript": []any{}, "longview": []any{}, "volume": []any{}, "database": []any{}, "vpc": []any{},
	})
}

// mayCreate wraps a create handler: a restricted user without the
// add_linodes grant is refused.
func (s *Sim) mayCreate(h http.HandlerFunc) http.HandlerFunc {
	return s.refuseIf(func(rs *restriction, _ *http.Request) bool { return rs != nil && !rs.addLinodes }, h)
}

// mayTag says whether the token's user may add tags to Linodes; a
// restricted user needs read_write account access. Linode documents the
// rule but not its answer; the simulator answers 403 "Unauthorized" on
// the tags field.
func (s *Sim) mayTag() bool {
	return s.restricted == nil || s.restricted.accountAccess == "read_write"
}

// mayChange wraps a handler that changes the instance in the path: a
// restricted user who may only read it is refused.
func (s *Sim) mayChange(h http.HandlerFunc) http.HandlerFunc {
	return s.refuseIf(func(rs *restriction, r *http.Request) bool {
		id, _ := strconv.Atoi(r.PathValue("id"))
		return rs != nil && rs.readOnly[id]
	}, h)
}

// refuseIf wraps h: a request is answered 403 "Unauthorized", as Linode
// answers one the user's grants do not allow, when refused says so of it
// and the token's restriction (nil for an unrestricted user), which it
// reads under the simulator's lock.
func (s *Sim) refuseIf(refused func(rs *restriction, r *http.Request) bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		refuse := refused(s.restricted, r)
		s.mu.Unlock()
		if refuse {
			writeErr(w, http.StatusForbidden, "Unauthorized", "")
			return
		}
		h(w, r)
	}
}
