// The VM list (kept live by the store) and the create form, whose
// validation errors come from the API and are shown next to the field the
// problem names. In a cluster (any VM has "member") the list has a Member
// column, and the form a Member select (GET /v1/cluster's members; hidden on
// a stand-alone daemon, which refuses the field) and the ha checkbox.

import { renderActions } from './actions.js';
import { api } from './api.js';
import { apiForm } from './form.js';
import { duration, el, mib, uptime } from './format.js';
import { sortedNetworks, sortedVms, sortedVolumes, store, subscribe } from './store.js';

const NO_NETWORK = 'none';
const NO_VOLUME = 'none';
const ANY_MEMBER = 'any';

const FIELDS = [
  { name: 'name', label: 'Name', type: 'text', placeholder: 'web-1', required: true,
    hint: 'lower-case letters, digits and dashes' },
  { name: 'kernel', label: 'Kernel', type: 'text', placeholder: '/path/to/bzImage', required: true },
  { name: 'initrd', label: 'Initrd', type: 'text', placeholder: 'optional' },
  { name: 'cmdline', label: 'Command line', type: 'text', placeholder: 'console=ttyS0' },
  { name: 'mode', label: 'Mode', type: 'select', options: ['pv', 'full'] },
  { name: 'vcpus', label: 'vCPUs', type: 'number', value: '1', min: '1', max: '64' },
  { name: 'memory_mib', label: 'Memory (MiB)', type: 'number', value: '256', min: '16' },
  { name: 'autostart', label: 'Start with the daemon', type: 'checkbox' },
  // One NIC on a managed network (the select lists them), with an optional static address.
  { name: 'network', label: 'Network', type: 'select', options: [NO_NETWORK], errorField: 'nics' },
  { name: 'ip', label: 'Static IP', type: 'text', placeholder: 'empty: DHCP', errorField: 'nics',
    hint: 'an address of the network, for port forwards' },
  // One disk by volume name (the storage page makes them).
  { name: 'volume', label: 'Disk (volume)', type: 'select', options: [NO_VOLUME], errorField: 'disks' },
  { name: 'member', label: 'Member', type: 'select', options: [ANY_MEMBER],
    hint: 'any: the online member with the most free memory' },
  { name: 'ha', label: 'Restart on another member if its own goes offline', type: 'checkbox' },
];

// The form's network and ip become the definition's one NIC, its volume its one disk, its
// member the pin (none for any), its ha box "ha": "restart".
function toDefinition(body) {
  const { network, ip, volume, member, ha, ...rest } = body;
  if (network && network !== NO_NETWORK) rest.nics = [ip ? { network, ip } : { network }];
  if (volume && volume !== NO_VOLUME) rest.disks = [{ volume }];
  if (member && member !== ANY_MEMBER) rest.member = member;
  if (ha) rest.ha = 'restart';
  return rest;
}

// The member select: shown with the cluster's members in a cluster, hidden stand-alone.
async function fillMembers(form) {
  const select = form.elements.member;
  const box = form.querySelector('[data-field="member"]');
  box.hidden = true;
  let cluster = null;
  try {
    cluster = await api('GET', '/v1/cluster');
  } catch {
    return; // a daemon without the route: stand-alone
  }
  if (!cluster?.enabled) return;
  select.replaceChildren(el('option', { value: ANY_MEMBER, text: ANY_MEMBER }),
    ...cluster.members.map((m) => el('option', { value: m.name, text: `${m.name} (${m.state})` })));
  box.hidden = false;
}

// The volume select: read-only volumes, and read-write ones no VM uses yet.
function fillVolumes(select) {
  const chosen = select.value;
  const free = sortedVolumes().filter((v) => v.readonly || !(v.vms || []).length);
  select.replaceChildren(el('option', { value: NO_VOLUME, text: NO_VOLUME }),
    ...free.map((v) => el('option', { value: v.name, text: v.readonly ? `${v.name} (read-only)` : v.name })));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

// Keeps the network select's choices those of the store, and the one chosen if it stays.
function fillNetworks(select) {
  const chosen = select.value;
  select.replaceChildren(...[NO_NETWORK, ...sortedNetworks().map((n) => n.name)]
    .map((name) => el('option', { value: name, text: name })));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function createForm(host) {
  const dirs = host?.image_dirs?.length
    ? el('p', { class: 'hint' }, 'Kernels, initrds and disks must lie under ',
        ...host.image_dirs.flatMap((d, i) => [i ? ', ' : '', el('code', { text: d })]), '.')
    : null;
  return apiForm({
    id: 'create-form', title: 'New VM', intro: dirs, fields: FIELDS, prefix: 'create',
    path: '/v1/vms', submitText: 'Create VM', transform: toDefinition,
    done: (vm, form) => {
      form.elements.name.value = '';
      form.elements.ip.value = '';
      form.dispatchEvent(new CustomEvent('created', { detail: vm }));
    },
  });
}

const HEADERS = ['Name', 'State', 'Mode', 'vCPUs', 'Memory', 'Uptime', ''];
const hasMembers = (vms) => vms.some((vm) => vm.member);

function row(vm, withMember) {
  const actions = el('td', { class: 'actions' });
  renderActions(actions, vm);
  return el(
    'tr',
    { 'data-vm-id': vm.id, 'data-vm-name': vm.name, 'data-state': vm.state },
    el('td', { class: 'name' }, el('a', { href: `#/vms/${encodeURIComponent(vm.id)}`, text: vm.name })),
    withMember ? el('td', { class: 'member', text: vm.member || '–' }) : null,
    el('td', {}, el('span', { class: `state state-${vm.state}`, text: vm.state, title: vm.state_reason || null })),
    el('td', { class: 'mode', text: vm.mode }),
    el('td', { class: 'num', text: vm.vcpus ?? '–' }),
    el('td', { class: 'num', text: mib(vm.memory_mib) }),
    el('td', { class: 'num uptime', text: duration(uptime(vm)) }),
    actions,
  );
}

export function listView(main, host) {
  const tbody = el('tbody');
  const head = el('tr');
  const empty = el('p', { class: 'muted empty', text: 'No VMs yet: create one with the form.' });
  const table = el('table', { class: 'vms', id: 'vm-table' }, el('thead', {}, head), tbody);
  let withMember = null;
  const form = createForm(host);
  main.replaceChildren(
    el('div', { class: 'layout' },
      el('section', { class: 'card list' }, el('h2', { text: 'Virtual machines' }), table, empty),
      form),
  );

  const render = () => {
    const vms = sortedVms();
    if (withMember !== hasMembers(vms)) {
      withMember = hasMembers(vms);
      const headers = withMember ? [HEADERS[0], 'Member', ...HEADERS.slice(1)] : HEADERS;
      head.replaceChildren(...headers.map((h) => el('th', { text: h })));
    }
    tbody.replaceChildren(...vms.map((vm) => row(vm, withMember)));
    empty.hidden = vms.length > 0 || !store.loaded;
  };
  const updateRow = (id) => {
    const vm = store.vms.get(id);
    const old = tbody.querySelector(`tr[data-vm-id="${CSS.escape(id)}"]`);
    if (!vm || !old || withMember !== hasMembers([...store.vms.values()])) return render();
    old.replaceWith(row(vm, withMember));
  };
  render();
  fillNetworks(form.elements.network);
  fillVolumes(form.elements.volume);
  fillMembers(form);
  const unsubscribe = subscribe((kind, id) => {
    if (kind === 'vm') updateRow(id);
    else if (kind === 'list' || kind === 'deleted') render();
    else if (kind === 'networks' || kind === 'network' || kind === 'network-deleted') {
      fillNetworks(form.elements.network);
    } else if (kind === 'storage' || kind === 'volume' || kind === 'volume-deleted') {
      fillVolumes(form.elements.volume);
    }
  });
  // Uptimes tick without asking the daemon.
  const ticker = setInterval(() => {
    for (const tr of tbody.rows) {
      const vm = store.vms.get(tr.dataset.vmId);
      if (vm) tr.querySelector('.uptime').textContent = duration(uptime(vm));
    }
  }, 1000);
  return () => {
    unsubscribe();
    clearInterval(ticker);
  };
}
