// The Snapshots panel of a VM's page: the VM's snapshots (GET
// /v1/vms/{id}/snapshots, oldest first) with when each was taken, the VM's
// state then, its memory, what it takes on disk and how long the vCPUs were
// stopped to take it. "Take snapshot" (an optional name; the daemon names
// an unnamed one snap-<seconds>) while the VM runs or is paused; per row
// Restore (confirmed: what the VM did since is lost), Clone (asks the new
// VM's name; the clone starts from the snapshot) and Delete (confirmed).
// The list is fetched again on the store's 'snapshots' signal, which the
// snapshot.* and vm.restored events of this VM raise. Every refusal shows
// the API's problem detail above the table.

import { api } from './api.js';
import { bytes, el, mib } from './format.js';
import { store, subscribe } from './store.js';

const CAN_SNAPSHOT = new Set(['running', 'paused']);

// "2026-12-04 03:10:00 UTC" from RFC 3339, without the fraction.
export function snapshotTime(iso) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso || '');
  return m ? `${m[1]} ${m[2]} UTC` : (iso || '–');
}

// How long the vCPUs were stopped: "0.4 ms", "47 ms", "1.25 s".
export function pauseText(ms) {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

const onDisk = (s) => (s.state_bytes ?? 0) + (s.memory_allocated_bytes ?? 0);

function snapshotRow(snap, actions) {
  const button = (action, label, title) => {
    const b = el('button', { type: 'button', class: `action action-${action}`, 'data-action': action, text: label, title });
    b.addEventListener('click', () => actions[action](snap, b));
    return b;
  };
  return el('tr', { 'data-snapshot-name': snap.name, 'data-state': snap.vm_state },
    el('td', { class: 'name', text: snap.name }),
    el('td', { class: 'created', text: snapshotTime(snap.created_at), title: snap.created_at }),
    el('td', {}, el('span', { class: `state state-${snap.vm_state}`, text: snap.vm_state })),
    el('td', { class: 'num memory', text: snap.memory_mib != null ? mib(snap.memory_mib) : bytes(snap.memory_bytes) }),
    el('td', {
      class: 'num on-disk', text: bytes(onDisk(snap)),
      title: `state ${bytes(snap.state_bytes)}, memory ${bytes(snap.memory_allocated_bytes)} of ${bytes(snap.memory_bytes)} (zero pages take no room)`,
    }),
    el('td', { class: 'num paused', text: pauseText(snap.paused_ms), title: 'how long the vCPUs were stopped to take it' }),
    el('td', { class: 'actions' },
      button('restore', 'Restore', 'put the VM back to this snapshot and run it from there'),
      button('clone', 'Clone', 'a new VM started from this snapshot'),
      button('delete', 'Delete')));
}

export function snapshotsPane(vm) {
  const vmPath = `/v1/vms/${encodeURIComponent(vm.id)}`;
  const body = el('tbody');
  const error = el('div', { class: 'form-error', id: 'snapshot-error', role: 'alert' });
  const status = el('div', { class: 'hint', id: 'snapshot-status', role: 'status' });
  const empty = el('p', { class: 'muted empty', id: 'no-snapshots', text: 'No snapshots of this VM.', hidden: true });
  const nameInput = el('input', {
    type: 'text', id: 'snapshot-name', name: 'name', placeholder: 'name (optional)', autocomplete: 'off',
    spellcheck: 'false', 'aria-label': 'the new snapshot\'s name',
  });
  const take = el('button', { type: 'submit', class: 'primary', id: 'snapshot-take', text: 'Take snapshot' });
  const form = el('form', { class: 'snapshot-form', id: 'snapshot-form', novalidate: true }, nameInput, take);
  let loading = null;
  let again = false;
  let closed = false;

  const current = () => store.vms.get(vm.id) || vm;
  const say = (text) => { status.replaceChildren(...(Array.isArray(text) ? text : [text])); };

  function setTakeEnabled() {
    const state = current().state;
    take.disabled = !CAN_SNAPSHOT.has(state);
    take.title = take.disabled ? `a snapshot needs a running or paused VM, not a ${state} one` : '';
  }

  // One GET at a time; a signal while one is out asks for one more after it.
  async function load() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        try {
          const list = await api('GET', `${vmPath}/snapshots`);
          if (closed) return;
          body.replaceChildren(...list.map((s) => snapshotRow(s, actions)));
          empty.hidden = list.length > 0;
        } catch (err) {
          if (!closed) error.textContent = `Snapshots: ${err.message}`;
        }
      } while (again && !closed);
    })();
    try {
      await loading;
    } finally {
      loading = null;
    }
  }

  // Runs fn with button disabled, the API's refusal shown above the table.
  async function guarded(button, fn) {
    error.textContent = '';
    say('');
    button.disabled = true;
    try {
      await fn();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
      setTakeEnabled();
    }
  }

  const actions = {
    restore: (snap, button) => {
      const name = current().name;
      if (!window.confirm(`Restore ${name} to snapshot ${snap.name}? What it did since is lost (its disks are not rolled back).`)) return;
      return guarded(button, async () => {
        await api('POST', `${vmPath}/restore`, { snapshot: snap.name });
        say(`${name} restored to ${snap.name}`);
      });
    },
    clone: (snap, button) => {
      const source = current().name;
      const name = window.prompt(`Name of the new VM, started from ${source}/${snap.name}:`, `${source}-clone`);
      if (!name || !name.trim()) return;
      return guarded(button, async () => {
        const clone = await api('POST', '/v1/vms', { name: name.trim(), from_snapshot: `${source}/${snap.name}` });
        say([el('a', { href: `#/vms/${encodeURIComponent(clone.id)}`, text: clone.name }),
          ` created from ${snap.name}, ${clone.state}`]);
      });
    },
    delete: (snap, button) => {
      if (!window.confirm(`Delete snapshot ${snap.name} of ${current().name}?`)) return;
      return guarded(button, async () => {
        await api('DELETE', `${vmPath}/snapshots/${encodeURIComponent(snap.name)}`);
        body.querySelector(`tr[data-snapshot-name="${CSS.escape(snap.name)}"]`)?.remove();
        empty.hidden = body.childElementCount > 0;
        load();
      });
    },
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    guarded(take, async () => {
      const snap = await api('POST', `${vmPath}/snapshot`, name ? { name } : {});
      nameInput.value = '';
      say(`${snap.name} taken, the vCPUs stopped ${pauseText(snap.paused_ms)}`);
      await load();
    });
  });

  return {
    node: el('section', { class: 'card snapshots', id: 'snapshots' },
      el('div', { class: 'card-head' }, el('h2', { text: 'Snapshots' }), form),
      error, status,
      el('table', { class: 'vms snapshots', id: 'snapshot-table' },
        el('thead', {}, el('tr', {}, ...['Name', 'Created', 'State', 'Memory', 'On disk', 'Pause', '']
          .map((h) => el('th', { text: h })))), body),
      empty),
    mount() {
      setTakeEnabled();
      load();
    },
    // The VM's state changed: Take snapshot follows it.
    stateChanged() {
      setTakeEnabled();
    },
    // A snapshot of this VM was taken, deleted or restored (an event).
    refresh() {
      load();
    },
    close() {
      closed = true;
    },
  };
}
