// The managed networks: the list (#/networks, kept live by the store from
// the network.* events) with a create form, and one network (#/networks/<name>)
// with its addresses, dnsmasq, the VM NICs on it, its DHCP leases and its
// port forwards (added and removed here), and its delete, whose refusal
// while VMs use the network is shown as the API words it.
//
// Leases come from dnsmasq's lease file, which changes without an event:
// they are fetched when a view opens, when its network changes, and every
// LEASES_MS while it is open.

import { api } from './api.js';
import { apiForm } from './form.js';
import { el } from './format.js';
import { sortedNetworks, store, subscribe } from './store.js';

const LEASES_MS = 10000;

const NETWORK_FIELDS = [
  { name: 'name', label: 'Name', type: 'text', placeholder: 'lab', required: true,
    hint: 'lower-case letters, digits and dashes' },
  { name: 'cidr', label: 'CIDR', type: 'text', placeholder: 'e.g. 10.80.0.0/24',
    hint: '/16 to /29; empty: the daemon picks a free /24' },
  { name: 'nat', label: 'NAT to the outside', type: 'checkbox', checked: true, sendFalse: true },
  { name: 'dhcp', label: 'DHCP', type: 'checkbox', checked: true, sendFalse: true },
  { name: 'dns_domain', label: 'DNS domain', type: 'text', placeholder: 'vmmd' },
  { name: 'mtu', label: 'MTU', type: 'number', placeholder: '1500', min: '576', max: '9000' },
];

const FORWARD_FIELDS = [
  { name: 'protocol', label: 'Protocol', type: 'select', options: ['tcp', 'udp'] },
  { name: 'host_port', label: 'Host port', type: 'number', min: '1', max: '65535', required: true },
  { name: 'host_address', label: 'Host address', type: 'text', placeholder: 'every address' },
  { name: 'vm', label: 'VM', type: 'text', placeholder: 'a VM with a static ip here', required: true,
    list: 'forward-vms' },
  { name: 'vm_port', label: 'VM port', type: 'number', min: '1', max: '65535', placeholder: 'the host port' },
];

const networkPath = (name, rest = '') => `/v1/networks/${encodeURIComponent(name)}${rest}`;
const yesNo = (v) => (v ? 'yes' : 'no');

function stateBadge(net) {
  return el('span', { class: `state net-state-${net.state}`, text: net.state, title: net.error || null });
}

// ---- the list ------------------------------------------------------------------------

function networkRow(net, leases) {
  return el('tr', { 'data-network-name': net.name, 'data-state': net.state },
    el('td', { class: 'name' }, el('a', { href: `#/networks/${encodeURIComponent(net.name)}`, text: net.name })),
    el('td', {}, stateBadge(net)),
    el('td', { class: 'cidr' }, el('code', { text: net.cidr })),
    el('td', { class: 'bridge' }, el('code', { text: net.bridge })),
    el('td', { class: 'nat', text: yesNo(net.nat) }),
    el('td', { class: 'num leases', text: net.dhcp ? (leases ?? '…') : '–' }),
    el('td', { class: 'num nics', text: (net.nics || []).length }),
    el('td', { class: 'num forwards', text: net.forwards ?? 0 }));
}

export function networksView(main) {
  const tbody = el('tbody');
  const leaseCounts = new Map();
  const empty = el('p', { class: 'muted empty', text: 'No networks yet: create one with the form.' });
  const table = el('table', { class: 'vms networks', id: 'network-table' },
    el('thead', {}, el('tr', {},
      ...['Name', 'State', 'CIDR', 'Bridge', 'NAT', 'Leases', 'VM NICs', 'Forwards'].map((h) => el('th', { text: h })))),
    tbody);
  const form = apiForm({
    id: 'network-form', title: 'New network', fields: NETWORK_FIELDS, prefix: 'network',
    path: '/v1/networks', submitText: 'Create network',
    done: (_net, f) => {
      f.reset();
    },
  });
  main.replaceChildren(el('div', { class: 'layout' },
    el('section', { class: 'card list' }, el('h2', { text: 'Networks' }), table, empty), form));

  const render = () => {
    const nets = sortedNetworks();
    tbody.replaceChildren(...nets.map((n) => networkRow(n, leaseCounts.get(n.name))));
    empty.hidden = nets.length > 0 || !store.networksLoaded;
  };
  const countLeases = async (name) => {
    try {
      leaseCounts.set(name, (await api('GET', networkPath(name, '/leases'))).length);
    } catch {
      leaseCounts.delete(name);
    }
    const cell = tbody.querySelector(`tr[data-network-name="${CSS.escape(name)}"] .leases`);
    if (cell && store.networks.get(name)?.dhcp) cell.textContent = leaseCounts.get(name) ?? '–';
  };
  const countAll = () => {
    for (const net of store.networks.values()) if (net.dhcp) countLeases(net.name);
  };
  render();
  countAll();
  const unsubscribe = subscribe((kind, name) => {
    if (kind === 'networks') {
      render();
      countAll();
    } else if (kind === 'network') {
      render();
      countLeases(name);
    } else if (kind === 'network-deleted') {
      leaseCounts.delete(name);
      render();
    }
  });
  const timer = setInterval(countAll, LEASES_MS);
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}

// ---- one network -------------------------------------------------------------------------

function facts(net) {
  const range = net.dhcp_range ? `${net.dhcp_range.start} – ${net.dhcp_range.end}` : 'off';
  const dnsmasq = net.dnsmasq_pid != null
    ? `pid ${net.dnsmasq_pid}, restarted ${net.dnsmasq_restarts ?? 0} times`
    : `not running (restarted ${net.dnsmasq_restarts ?? 0} times)`;
  return [
    ['CIDR', el('code', { text: net.cidr })],
    ['Gateway', el('code', { text: net.gateway })],
    ['Bridge', el('code', { text: net.bridge })],
    ['NAT', net.nat ? 'yes: guests reach outside through the host' : 'no: isolated'],
    ['DHCP', range],
    ['DNS domain', net.dns_domain],
    ['MTU', String(net.mtu)],
    ['dnsmasq', dnsmasq],
    ...(net.error ? [['Error', net.error]] : []),
  ].flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]);
}

// The VM's name for a link: the store knows every VM by id.
function vmLink(id, name) {
  return id ? el('a', { href: `#/vms/${encodeURIComponent(id)}`, text: name || id }) : (name || '–');
}

function table(id, headers, rows, emptyText) {
  return rows.length
    ? el('table', { class: 'vms', id },
      el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { text: h })))), el('tbody', {}, ...rows))
    : el('p', { class: 'muted', id, text: emptyText });
}

export function networkView(main, name) {
  if (!store.networks.has(name)) {
    main.replaceChildren(el('section', { class: 'card' },
      el('p', { text: store.networksLoaded ? 'This network does not exist (any more).' : 'Loading…' }),
      el('p', {}, el('a', { href: '#/networks', text: '← All networks' }))));
    return () => {};
  }
  const title = el('h1', {});
  const factList = el('dl', { class: 'facts' });
  const nics = el('div', {});
  const leases = el('div', {});
  const forwards = el('div', {});
  const deleteError = el('div', { class: 'form-error', id: 'network-error', role: 'alert' });
  const deleteButton = el('button', { type: 'button', class: 'action action-delete', id: 'network-delete', text: 'Delete network' });
  const vmChoices = el('datalist', { id: 'forward-vms' });
  const forwardForm = apiForm({
    id: 'forward-form', title: 'New port forward', fields: FORWARD_FIELDS, prefix: 'forward',
    path: () => networkPath(name, '/forwards'), submitText: 'Add forward',
    done: (_fwd, f) => {
      f.reset();
      loadForwards();
    },
  });
  forwardForm.append(vmChoices);
  let leaseByMac = new Map(); // the last leases, for the dynamic NICs' addresses

  const renderNetwork = () => {
    const net = store.networks.get(name);
    if (!net) return;
    title.replaceChildren(net.name, ' ', stateBadge(net));
    factList.replaceChildren(...facts(net));
    nics.replaceChildren(table('network-nics', ['VM', 'NIC', 'MAC', 'IP'],
      (net.nics || []).map((n) => el('tr', { 'data-vm': n.vm || n.vm_id },
        el('td', {}, vmLink(n.vm_id, n.vm)), el('td', { text: `net${n.nic}` }),
        el('td', {}, el('code', { text: n.mac || '–' })),
        el('td', {}, el('code', { text: n.ip || (leaseByMac.has(n.mac?.toLowerCase())
          ? `${leaseByMac.get(n.mac.toLowerCase())} (lease)` : 'dhcp') })))),
      'No VM has a NIC on this network.'));
    // Forwards need a NIC with a static ip: those VMs are the choices.
    vmChoices.replaceChildren(...(net.nics || []).filter((n) => n.ip && n.vm)
      .map((n) => el('option', { value: n.vm, text: `${n.vm} (${n.ip})` })));
  };

  async function loadLeases() {
    try {
      const list = await api('GET', networkPath(name, '/leases'));
      leaseByMac = new Map(list.map((l) => [l.mac.toLowerCase(), l.ip]));
      renderNetwork();
      leases.replaceChildren(table('lease-table', ['MAC', 'IP', 'Hostname', 'VM', 'Expires', 'Static'],
        list.map((l) => el('tr', { 'data-mac': l.mac },
          el('td', {}, el('code', { text: l.mac })), el('td', {}, el('code', { text: l.ip })),
          el('td', { text: l.hostname || '–' }), el('td', {}, vmLink(l.vm_id, l.vm)),
          el('td', { text: l.expires_at ? new Date(l.expires_at).toLocaleString() : 'never' }),
          el('td', { text: yesNo(l.static) }))),
        'No leases.'));
    } catch (err) {
      leases.replaceChildren(el('p', { class: 'form-error', text: err.message }));
    }
  }

  async function removeForward(fwd, button) {
    button.disabled = true;
    try {
      await api('DELETE', networkPath(name, `/forwards/${fwd.id}`));
      loadForwards();
    } catch (err) {
      deleteError.textContent = `Forward ${fwd.id}: ${err.message}`;
      button.disabled = false;
    }
  }

  async function loadForwards() {
    try {
      const list = await api('GET', networkPath(name, '/forwards'));
      forwards.replaceChildren(table('forward-table',
        ['Id', 'Protocol', 'Host address', 'Host port', 'VM', 'VM address', ''],
        list.map((f) => {
          const remove = el('button', { type: 'button', class: 'action action-delete', 'data-action': 'remove', text: 'Remove' });
          remove.addEventListener('click', () => removeForward(f, remove));
          return el('tr', { 'data-forward-id': f.id, 'data-host-port': f.host_port },
            el('td', { class: 'num', text: f.id }), el('td', { text: f.protocol }),
            el('td', {}, el('code', { text: f.host_address || '*' })), el('td', { class: 'num', text: f.host_port }),
            el('td', {}, vmLink(f.vm_id, f.vm)), el('td', {}, el('code', { text: `${f.vm_ip ?? '?'}:${f.vm_port}` })),
            el('td', { class: 'actions' }, remove));
        }),
        'No port forwards.'));
    } catch (err) {
      forwards.replaceChildren(el('p', { class: 'form-error', text: err.message }));
    }
  }

  deleteButton.addEventListener('click', async () => {
    deleteError.textContent = '';
    if (!window.confirm(`Delete network ${name}? Its bridge, dnsmasq and port forwards go with it.`)) return;
    deleteButton.disabled = true;
    try {
      await api('DELETE', networkPath(name));
      location.hash = '#/networks';
    } catch (err) {
      // 409 while VMs have NICs on it: the API names them.
      deleteError.textContent = err.message;
    } finally {
      deleteButton.disabled = false;
    }
  });

  main.replaceChildren(el('div', { class: 'vm-page network-page', 'data-network': name },
    el('section', { class: 'card summary' },
      el('p', {}, el('a', { href: '#/networks', text: '← All networks' })), title,
      el('div', { class: 'actions' }, deleteButton), deleteError, factList),
    el('div', { class: 'vm-body' },
      el('div', { class: 'stack' },
        el('section', { class: 'card' }, el('h2', { text: 'VM NICs' }), nics),
        el('section', { class: 'card' }, el('h2', { text: 'DHCP leases' }), leases),
        el('section', { class: 'card' }, el('h2', { text: 'Port forwards' }), forwards)),
      forwardForm)));
  renderNetwork();
  loadLeases();
  loadForwards();
  const unsubscribe = subscribe((kind, changed) => {
    if (changed !== name) return;
    if (kind === 'network-deleted') location.hash = '#/networks';
    else if (kind === 'network') {
      renderNetwork();
      loadLeases();
    } else if (kind === 'forwards') loadForwards();
  });
  const timer = setInterval(loadLeases, LEASES_MS);
  return () => {
    unsubscribe();
    clearInterval(timer);
  };
}
