package linodesim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// Linode's resource lock types: both stop the deletion of the locked
// Linode; the second also stops that of its disks and configs, which the
// simulator does not have.
const (
	LockCannotDelete                 = "cannot_delete"
	LockCannotDeleteWithSubresources = "cannot_delete_with_subresources"
)

// lockRecord is a resource lock on an instance.
type lockRecord struct {
	ID     int    `json:"id"`
	Type   string `json:"lock_type"`
	Linode int    `json:"linode_id"`
}

// firstLockID is where lock IDs start; IDs are never reused.
const firstLockID = 1

// LockInstance puts a lock of lockType on instance id, as an unrestricted
// user's POST /v4beta/locks does, and returns the lock's ID.
func (s *Sim) LockInstance(id int, lockType string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.addLock("linode", id, lockType)
	if err != nil {
		return 0, fmt.Errorf("linodesim: lock Linode %d: %s", id, err.reason)
	}
	return l.ID, nil
}

// Unlock removes lock id, as an unrestricted user's DELETE
// /v4beta/locks/{id} does.
func (s *Sim) Unlock(id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, err := s.unlock(id)
	if !found {
		return fmt.Errorf("linodesim: no lock %d", id)
	}
	return err
}

// unlock removes lock id, if there is one; the caller holds s.mu.
func (s *Sim) unlock(id int) (found bool, err error) {
	l, ok := s.locks[id]
	if !ok {
		return false, nil
	}
	delete(s.locks, id)
	if err := s.save(); err != nil {
		s.locks[id] = l
		return true, err
	}
	return true, nil
}

// lockError is a refusal of a lock request: its status and Linode's reason.
type lockError struct {
	status        int
	reason, field string
}

// addLock records a lock; the caller holds s.mu. As on Linode, a resource
// takes one lock at most.
func (s *Sim) addLock(entityType string, id int, lockType string) (*lockRecord, *lockError) {
	switch {
	case !slices.Contains([]string{"linode", "lkecluster", "lkenodepool", "nodebalancer", "volume"}, entityType):
		return nil, &lockError{http.StatusBadRequest, "entity_type must be one of linode, lkecluster, lkenodepool, nodebalancer, volume", "entity_type"}
	case lockType != LockCannotDelete && lockType != LockCannotDeleteWithSubresources:
		return nil, &lockError{http.StatusBadRequest, "lock_type must be cannot_delete or cannot_delete_with_subresources", "lock_type"}
	}
	rec, ok := s.insts[id]
	if entityType != "linode" || !ok || rec.Phase == "delete" {
		// The simulator has Linodes only.
		return nil, &lockError{http.StatusNotFound, "Not found", ""}
	}
	if s.lockOn(id) != nil {
		return nil, &lockError{http.StatusBadRequest, "This entity already has a lock", "entity_id"}
	}
	l := &lockRecord{ID: s.nextLockID, Type: lockType, Linode: id}
	s.nextLockID++
	s.locks[l.ID] = l
	if err := s.save(); err != nil {
		delete(s.locks, l.ID)
		return nil, &lockError{http.StatusInternalServerError, "Simulator could not save its state", ""}
	}
	return l, nil
}

// lockOn is the lock on instance id, or nil; the caller holds s.mu.
func (s *Sim) lockOn(id int) *lockRecord {
	for _, l := range s.locks {
		if l.Linode == id {
			return l
		}
	}
	return nil
}

// renderLock is a lock as Linode's API renders it; the caller holds s.mu.
func (s *Sim) renderLock(l *lockRecord) map[string]any {
	label := ""
	if rec, ok := s.insts[l.Linode]; ok {
		label = rec.Label
	}
	return map[string]any{"id": l.ID, "lock_type": l.Type, "entity": map[string]any{
		"id": l.Linode, "type": "linode", "label": label, "url": fmt.Sprintf("/v4/linode/instances/%d", l.Linode),
	}}
}

// mayLock wraps a locks handler: only an unrestricted user may see or
// manage locks, whatever its grants on the resource (Linode's docs).
func (s *Sim) mayLock(h http.HandlerFunc) http.HandlerFunc {
	return s.refuseIf(func(rs *restriction, _ *http.Request) bool { return rs != nil }, h)
}

func (s *Sim) listLocks(w http.ResponseWriter, r *http.Request) {
	page, size, err := pageParams(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.reason, err.field)
		return
	}
	s.mu.Lock()
	ids := make([]int, 0, len(s.locks))
	for id := range s.locks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	data := []map[string]any{}
	for i := (page - 1) * size; i < len(ids) && i < page*size; i++ {
		data = append(data, s.renderLock(s.locks[ids[i]]))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"data": data, "page": page, "pages": max(1, (len(ids)+size-1)/size), "results": len(ids),
	})
}

func (s *Sim) getLock(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[id]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.renderLock(l))
}

func (s *Sim) createLock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		EntityType string `json:"entity_type"`
		EntityID   int    `json:"entity_id"`
		LockType   string `json:"lock_type"`
	}
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.addLock(req.EntityType, req.EntityID, req.LockType)
	if err != nil {
		writeErr(w, err.status, err.reason, err.field)
		return
	}
	writeJSON(w, http.StatusOK, s.renderLock(l))
}

func (s *Sim) deleteLock(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	found, err := s.unlock(id)
	s.mu.Unlock()
	switch {
	case !found:
		notFound(w)
	case err != nil:
		writeErr(w, http.StatusInternalServerError, "Simulator could not save its state", "")
	default:
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// lockedReason is the simulator's 400 reason for the delete of a locked
// Linode. Linode documents the refusal (its API reference for deleting a
// Linode) but not the reason's words.
func lockedReason(l *lockRecord) string {
	return fmt.Sprintf("Linode %d has a %s lock and cannot be deleted; remove the lock first", l.Linode, l.Type)
}
