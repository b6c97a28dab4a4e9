// The lifecycle buttons of a VM, enabled by the daemon's own lifecycle table
// (GET /v1/host "lifecycle": the actions each state allows), so the
// dashboard never keeps a second copy of the rules. Delete stays available
// while the VM runs, but only as a forced delete the user confirms.

import { api } from './api.js';
import { el } from './format.js';

const BUTTONS = [
  ['start', 'Start'],
  ['shutdown', 'Shut down'],
  ['stop', 'Stop'],
  ['pause', 'Pause'],
  ['resume', 'Resume'],
  ['reboot', 'Reboot'],
  ['delete', 'Delete'],
];

let lifecycle = {};
let notify = (message) => console.warn(message);

export function setLifecycle(table, onError) {
  lifecycle = table || {};
  notify = onError;
}

export function allowed(vm, action) {
  return (lifecycle[vm.state] || []).includes(action);
}

async function run(vm, action, onDeleted) {
  const path = `/v1/vms/${encodeURIComponent(vm.id)}`;
  if (action === 'delete') {
    const force = !allowed(vm, 'delete');
    const question = force
      ? `${vm.name} is ${vm.state}. Stop it and delete it?`
      : `Delete ${vm.name}? Its definition is removed for good.`;
    if (!window.confirm(question)) return;
    await api('DELETE', force ? `${path}?force=true` : path);
    if (onDeleted) onDeleted(vm);
    return;
  }
  await api('POST', `${path}/${action}`, action === 'shutdown' ? { timeout_s: 30 } : undefined);
}

// Fills container with the buttons for vm; call again when its state changes.
export function renderActions(container, vm, { onDeleted } = {}) {
  container.replaceChildren(
    ...BUTTONS.map(([action, label]) => {
      // Delete is always offered: where the state forbids it, as a confirmed forced delete.
      const enabled = action === 'delete' || allowed(vm, action);
      const button = el('button', {
        type: 'button',
        class: `action action-${action}`,
        'data-action': action,
        disabled: !enabled,
        text: label,
        title: enabled ? null : `not while ${vm.state}`,
      });
      button.addEventListener('click', async () => {
        button.disabled = true;
        try {
          await run(vm, action, onDeleted);
        } catch (err) {
          notify(`${label} ${vm.name}: ${err.message}`);
        } finally {
          button.disabled = false;
        }
      });
      return button;
    }),
  );
}
