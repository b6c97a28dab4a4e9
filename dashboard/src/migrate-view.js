// Live migration on a VM's page: a Migrate button (while the VM runs or is
// paused) that opens a dialog asking for the target daemon (unix:/PATH,
// http://HOST:PORT or https://HOST:PORT), its API token and the downtime
// budget, and POSTs /v1/vms/{id}/migrate. The daemon answers once the
// migration has begun; the rest comes from the store's 'migration' signal,
// which the vm.migration_started, vm.migration_progress, vm.migrated and
// vm.migration_failed events of this VM raise: the round, pages left and
// throughput with a bar, then the result (downtime, total, rounds) or why it
// failed (the VM runs on here). A refusal (409, 422, or 502 when the target
// cannot be reached or refuses) stays in the dialog with the API's words.
// Once a migration is done the VM's record leaves this daemon (vm.deleted);
// the page then stays to show the result instead of going back to the list.

import { api } from './api.js';
import { clearErrors, field, formBody, showError } from './form.js';
import { bytes, el } from './format.js';
import { store } from './store.js';

const CAN_MIGRATE = new Set(['running', 'paused']);
const RUNNING = new Set(['connecting', 'precopy', 'stopping']);

const FIELDS = [
  {
    name: 'target', label: 'Target daemon', type: 'text', required: true,
    placeholder: 'https://host-b:8443 or unix:/var/lib/vmmd2/vmmd.sock',
    hint: 'its disks must be on storage both hosts share, at the same paths or volume names',
  },
  { name: 'token', label: 'Target\'s API token', type: 'password', hint: 'not needed for unix:' },
  {
    name: 'max_downtime_ms', label: 'Max downtime (ms)', type: 'number', value: 300, min: 1, max: 60000,
    hint: 'memory is copied round after round until the rest fits in this pause',
  },
];

// "round 2: 1234 pages left, 812 MB/s", as vmctl prints it.
export function migrationProgressText(m) {
  const rate = Number.isFinite(m.throughput_mbps) ? `, ${Math.round(m.throughput_mbps)} MB/s` : '';
  return `round ${m.round ?? 0}: ${m.pages_left ?? '?'} pages left${rate}`;
}

// "downtime 12.3 ms, total 0.8 s, 3 rounds".
export function migrationResultText(m) {
  const downtime = Number.isFinite(m.downtime_ms) ? `${m.downtime_ms.toFixed(1)} ms` : '?';
  const total = Number.isFinite(m.total_ms) ? `${(m.total_ms / 1000).toFixed(1)} s` : '?';
  const rounds = m.rounds ?? '?';
  return `downtime ${downtime}, total ${total}, ${rounds} round${rounds === 1 ? '' : 's'}`;
}

export function migratePane(vm) {
  const vmPath = `/v1/vms/${encodeURIComponent(vm.id)}`;
  const open = el('button', { type: 'button', class: 'action action-migrate', id: 'migrate-open', text: 'Migrate…' });
  const status = el('div', { class: 'hint', id: 'migration-status', role: 'status' });
  const bar = el('progress', { class: 'migration-progress', id: 'migration-progress', max: 1, value: 0, hidden: true });
  const error = el('div', { class: 'form-error', id: 'migration-error', role: 'alert' });
  const formError = el('div', { class: 'form-error', id: 'migrate-error', role: 'alert' });
  const submit = el('button', { type: 'submit', class: 'primary', id: 'migrate-submit', text: 'Migrate' });
  const cancel = el('button', { type: 'button', id: 'migrate-cancel', text: 'Cancel' });
  const form = el('form', { class: 'create migrate-form', id: 'migrate-form', method: 'dialog', novalidate: true },
    el('h2', { text: `Migrate ${vm.name}` }),
    el('p', {
      class: 'hint',
      text: 'Moves the VM to another vmmd while it runs. The memory stream between the hosts is not encrypted: use a trusted network.',
    }),
    ...FIELDS.map((spec) => field(spec, 'migrate')), formError,
    el('div', { class: 'dialog-buttons' }, cancel, submit));
  const dialog = el('dialog', { class: 'card migrate-dialog', id: 'migrate-dialog' }, form);
  let pagesTotal = null;
  let left = false;

  const current = () => store.vms.get(vm.id) || vm;
  const migration = () => store.migrations.get(vm.id);

  function setEnabled() {
    const state = current().state;
    const busy = RUNNING.has(migration()?.state);
    open.disabled = left || busy || !CAN_MIGRATE.has(state);
    open.title = left ? 'the VM has left this daemon'
      : busy ? 'a migration is running'
        : open.disabled ? `a migration needs a running or paused VM, not a ${state} one` : '';
  }

  function show() {
    const m = migration();
    setEnabled();
    if (!m) return;
    if (Number.isFinite(m.pages_total)) pagesTotal = m.pages_total;
    error.textContent = '';
    if (RUNNING.has(m.state)) {
      status.textContent = m.round ? `Migrating to ${m.target ?? 'the target'}: ${migrationProgressText(m)}`
        : `Migrating to ${m.target ?? 'the target'}: connecting…`;
      if (Number.isFinite(m.bytes_sent)) status.textContent += `, ${bytes(m.bytes_sent)} sent`;
      bar.hidden = !(pagesTotal && Number.isFinite(m.pages_left));
      if (!bar.hidden) bar.value = Math.max(0, 1 - m.pages_left / pagesTotal);
    } else if (m.state === 'done') {
      bar.hidden = true;
      status.textContent = `Migrated ${current().name} to ${m.target ?? 'the target'}: ${migrationResultText(m)}.`;
    } else if (m.state === 'failed') {
      bar.hidden = true;
      status.textContent = '';
      error.textContent = `Migration to ${m.target ?? 'the target'} failed: ${m.error || 'no reason given'}. The VM runs on here.`;
    } else if (m.state === 'arrived') {
      status.textContent = 'Arrived here by live migration'
        + (Number.isFinite(m.source_downtime_ms) ? ` (downtime ${m.source_downtime_ms.toFixed(1)} ms).` : '.');
    }
  }

  open.addEventListener('click', () => {
    clearErrors(form);
    dialog.showModal();
    form.elements.target.focus();
  });
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = formBody(form, FIELDS);
    submit.disabled = true;
    try {
      const m = await api('POST', `${vmPath}/migrate`, body);
      pagesTotal = m.pages_total ?? null;
      // The events may have come first: keep what they said.
      const known = migration();
      if (!known || !known.round) store.migrations.set(vm.id, { ...m, ...(known || {}) });
      form.elements.token.value = '';
      dialog.close();
      show();
    } catch (err) {
      showError(form, formError, err);
    } finally {
      submit.disabled = false;
    }
  });

  return {
    node: el('div', { class: 'migration' }, el('div', { class: 'migration-row' }, open, status, bar), error, dialog),
    async mount() {
      setEnabled();
      // A migration running (started elsewhere), or the last one failing; a `done` one was of
      // an earlier record of this VM that has since come back.
      try {
        const m = await api('GET', `${vmPath}/migration`);
        if (!migration() && m.state !== 'done') store.migrations.set(vm.id, m);
        show();
      } catch {
        /* none (404), or a daemon without migrations */
      }
    },
    // A migration event of this VM, or its state changed.
    refresh() {
      show();
    },
    // The VM's record left this daemon: true when that was its migration, and the page stays.
    leftByMigration() {
      if (migration()?.state !== 'done') return false;
      left = true;
      show();
      return true;
    },
    close() {
      if (dialog.open) dialog.close();
    },
  };
}
