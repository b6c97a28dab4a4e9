// The cluster (#/cluster, issue 16): GET /v1/cluster's members (state,
// address, version, heartbeat age, VMs, memory allocated of capacity,
// evacuating) with their Evacuate and Remove buttons, a New join token
// button whose token is shown once, and the VMs of the store grouped by
// member (a VM of an offline member is "unknown"). A stand-alone daemon
// ("enabled": false) gets one line saying so and no actions.
//
// The members' records change without a VM event: the page fetches the
// cluster when it opens, on every cluster.* event (the store's 'cluster'
// signal) and every REFRESH_MS; heartbeat ages tick in between.

import { api } from './api.js';
import { bytes, duration, el, mib } from './format.js';
import { sortedVms, store, subscribe } from './store.js';

const REFRESH_MS = 5000;
const TOKEN_TTL_S = 3600;
const ALL = '';

const memberPath = (name, rest = '') => `/v1/cluster/members/${encodeURIComponent(name)}${rest}`;

function ageText(iso) {
  if (!iso) return '–';
  return `${duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000))} ago`;
}

// Allocated of capacity as a bar and its words; an offline member's allocation may be gone.
function memoryCell(m) {
  const cap = m.capacity?.memory_bytes;
  const used = m.allocation?.memory_bytes;
  const words = `${used == null ? '–' : bytes(used)} of ${bytes(cap)}`;
  return el('td', { class: 'num memory' },
    cap ? el('progress', { class: 'usage', max: String(cap), value: String(Math.min(used ?? 0, cap)) }) : null,
    ' ', el('span', { class: 'memory-text', text: words }));
}

function memberRow(m, onEvacuate, onRemove) {
  const evacuate = el('button', {
    type: 'button', class: 'action action-evacuate', 'data-action': 'evacuate', text: 'Evacuate',
    disabled: m.state !== 'online' || m.evacuating,
    title: m.evacuating ? 'already evacuating' : (m.state !== 'online' ? 'not while offline' : null),
  });
  evacuate.addEventListener('click', () => onEvacuate(m, evacuate));
  const removable = m.state === 'offline' && !m.self;
  const remove = el('button', {
    type: 'button', class: 'action action-delete', 'data-action': 'remove', text: 'Remove',
    disabled: !removable, title: removable ? null : 'only an offline member can be removed',
  });
  remove.addEventListener('click', () => onRemove(m, remove));
  const vms = m.allocation?.vms;
  return el('tr', { 'data-member': m.name, 'data-state': m.state, 'data-evacuating': m.evacuating ? 'true' : 'false' },
    el('td', { class: 'name' }, m.name, m.self ? el('span', { class: 'muted', text: ' (this one)' }) : null),
    el('td', {}, el('span', { class: `state member-state-${m.state}`, text: m.state })),
    el('td', { class: 'address' }, el('code', { text: m.address || '–' })),
    el('td', { class: 'version', text: m.version || '–' }),
    el('td', { class: 'num heartbeat', 'data-at': m.last_heartbeat || '', text: ageText(m.last_heartbeat) }),
    el('td', { class: 'num vms', text: vms == null ? '–' : `${vms} (${m.allocation.vms_running ?? 0} running)` }),
    memoryCell(m),
    el('td', { class: 'evacuating' }, m.evacuating ? el('span', { class: 'state state-starting', text: 'evacuating' }) : '–'),
    el('td', { class: 'actions' }, evacuate, remove));
}

// The store's VMs by member, in member order; a filter keeps one member.
function vmGroups(members, filter) {
  const byMember = new Map(members.map((m) => [m.name, []]));
  for (const vm of sortedVms()) {
    const key = vm.member || '–';
    if (!byMember.has(key)) byMember.set(key, []);
    byMember.get(key).push(vm);
  }
  return [...byMember].filter(([name]) => filter === ALL || name === filter).map(([name, vms]) =>
    el('div', { class: 'member-vms', 'data-member': name },
      el('h3', { text: `${name} · ${vms.length} VM${vms.length === 1 ? '' : 's'}` }),
      vms.length
        ? el('table', { class: 'vms' },
          el('thead', {}, el('tr', {}, ...['Name', 'State', 'Mode', 'Memory', 'HA'].map((h) => el('th', { text: h })))),
          el('tbody', {}, ...vms.map((vm) => el('tr', { 'data-vm-name': vm.name, 'data-state': vm.state },
            el('td', { class: 'name' }, el('a', { href: `#/vms/${encodeURIComponent(vm.id)}`, text: vm.name })),
            el('td', {}, el('span', { class: `state state-${vm.state}`, text: vm.state,
              title: vm.state === 'unknown' ? 'its member is offline: the last state is not known' : null })),
            el('td', { text: vm.mode || '–' }),
            el('td', { class: 'num', text: mib(vm.memory_mib) }),
            el('td', { class: 'ha', text: vm.ha || '–' })))))
        : el('p', { class: 'muted', text: 'No VMs.' })));
}

export function clusterView(main) {
  const summary = el('p', { class: 'muted', id: 'cluster-summary', text: 'Loading…' });
  const error = el('div', { class: 'form-error', id: 'cluster-error', role: 'alert' });
  const notice = el('p', { class: 'hint', id: 'cluster-notice', role: 'status' });
  const tbody = el('tbody');
  const members = el('table', { class: 'vms members', id: 'member-table' },
    el('thead', {}, el('tr', {}, ...['Name', 'State', 'Address', 'Version', 'Heartbeat', 'VMs', 'Memory',
      'Evacuating', ''].map((h) => el('th', { text: h })))),
    tbody);
  const tokenButton = el('button', { type: 'button', class: 'primary', id: 'join-token-new', text: 'New join token' });
  const tokenBox = el('div', { id: 'join-token', hidden: true });
  const filter = el('select', { id: 'member-filter' });
  const groups = el('div', { id: 'member-vms' });
  let cluster = null;

  const standalone = el('section', { class: 'card', id: 'cluster-standalone', hidden: true },
    el('h2', { text: 'Cluster' }),
    el('p', { class: 'muted', text: 'This vmmd is not in a cluster: it runs stand-alone (serve --cluster-etcd makes it a member).' }));
  const page = el('div', { class: 'vm-page cluster-page', hidden: true },
    el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', { id: 'cluster-title', text: 'Cluster' }), tokenButton),
      summary, tokenBox, error, notice, members),
    el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', { text: 'VMs per member' }),
        el('label', {}, 'Member ', filter)),
      groups));
  main.replaceChildren(standalone, page);

  const renderVms = () => {
    if (!cluster?.enabled) return;
    groups.replaceChildren(...vmGroups(cluster.members, filter.value));
  };
  const render = () => {
    standalone.hidden = cluster.enabled;
    page.hidden = !cluster.enabled;
    if (!cluster.enabled) return;
    const online = cluster.members.filter((m) => m.state === 'online').length;
    summary.textContent = `${cluster.name} · this member ${cluster.member} · ${online} of ` +
      `${cluster.members.length} members online · ${cluster.writable ? 'writable' : `read-only: ${cluster.detail || 'etcd unreachable'}`}`;
    summary.dataset.writable = String(cluster.writable);
    tbody.replaceChildren(...cluster.members.map((m) => memberRow(m, evacuate, remove)));
    const chosen = filter.value;
    filter.replaceChildren(el('option', { value: ALL, text: 'all' }),
      ...cluster.members.map((m) => el('option', { value: m.name, text: m.name })));
    if ([...filter.options].some((o) => o.value === chosen)) filter.value = chosen;
    renderVms();
  };
  const load = async () => {
    try {
      cluster = await api('GET', '/v1/cluster');
      error.textContent = '';
      render();
    } catch (err) {
      summary.textContent = '';
      error.textContent = `GET /v1/cluster: ${err.message}`;
    }
  };

  async function evacuate(m, button) {
    error.textContent = '';
    if (!window.confirm(`Evacuate ${m.name}? Its running VMs are live-migrated to the other online ` +
      'members, its stopped ones moved.')) return;
    button.disabled = true;
    try {
      const res = await api('POST', memberPath(m.name, '/evacuate'), {});
      const n = (res.vms || []).length;
      notice.textContent = `Evacuating ${m.name}: ${n} VM${n === 1 ? '' : 's'} to move.`;
      load();
    } catch (err) {
      error.textContent = `Evacuate ${m.name}: ${err.message}`;
      button.disabled = false;
    }
  }

  async function remove(m, button) {
    error.textContent = '';
    if (!window.confirm(`Remove ${m.name} from the cluster? Its record and its VMs' records go.`)) return;
    button.disabled = true;
    try {
      await api('DELETE', memberPath(m.name));
      notice.textContent = `${m.name} removed.`;
      load();
    } catch (err) {
      error.textContent = `Remove ${m.name}: ${err.message}`;
      button.disabled = false;
    }
  }

  tokenButton.addEventListener('click', async () => {
    error.textContent = '';
    tokenButton.disabled = true;
    try {
      const t = await api('POST', '/v1/cluster/join-tokens', { ttl_s: TOKEN_TTL_S });
      tokenBox.replaceChildren(
        el('p', {}, 'Join token (shown once, single use): ', el('code', { id: 'join-token-value', text: t.token })),
        el('p', { class: 'hint', id: 'join-token-expiry',
          text: `expires ${new Date(t.expires_at).toLocaleString()} (${t.expires_at})` }));
      tokenBox.hidden = false;
    } catch (err) {
      error.textContent = `New join token: ${err.message}`;
    } finally {
      tokenButton.disabled = false;
    }
  });
  filter.addEventListener('change', renderVms);

  load();
  const unsubscribe = subscribe((kind) => {
    if (kind === 'cluster') load();
    else if (kind === 'vm' || kind === 'list' || kind === 'deleted') renderVms();
  });
  const timer = setInterval(load, REFRESH_MS);
  const ticker = setInterval(() => {
    for (const td of tbody.querySelectorAll('td.heartbeat')) td.textContent = ageText(td.dataset.at);
  }, 1000);
  return () => {
    unsubscribe();
    clearInterval(timer);
    clearInterval(ticker);
  };
}
