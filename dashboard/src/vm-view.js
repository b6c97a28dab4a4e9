// One VM: its state and actions (live from the store), the serial console in
// a terminal widget over the console WebSocket, a chart of exits per
// second from the stats endpoint, its snapshots (snapshot-view.js) and its
// live migration (migrate-view.js).
//
// The console WebSocket asks for the tail of what the guest printed
// (?tail=): the worker sends that history and then the live output as one
// stream, so nothing printed around the moment of attach is lost or doubled.

import { Terminal } from './xterm.mjs';
import { renderActions } from './actions.js';
import { api, consoleSocketUrl } from './api.js';
import { drawChart } from './chart.js';
import { bytes, count, duration, el, mib } from './format.js';
import { migratePane } from './migrate-view.js';
import { snapshotsPane } from './snapshot-view.js';
import { store, subscribe } from './store.js';

const STATS_MS = 1000;
const CHART_POINTS = 60;
const TAIL_BYTES = 16384;
const HAS_CONSOLE = new Set(['running', 'paused']);

function totalExits(stats) {
  return Object.values(stats.exits || {}).reduce((a, b) => a + b, 0);
}

function consolePane(vm) {
  const status = el('span', { class: 'console-status', id: 'console-status', text: 'detached' });
  const screen = el('div', { class: 'terminal', id: 'terminal' });
  const term = new Terminal({
    // Small guests print bare "\n"; a Linux tty's "\r\n" is unchanged by this.
    convertEol: true,
    cursorBlink: true,
    fontSize: 13,
    rows: 24,
    cols: 80,
    scrollback: 2000,
    theme: { background: '#0f172a', foreground: '#e2e8f0', cursor: '#93c5fd' },
  });
  let socket = null;
  let closed = false;
  let reattach = false; // a restore replaced the worker: its socket ends, attach to the new one

  const setStatus = (text, kind) => {
    status.textContent = text;
    status.dataset.kind = kind;
  };

  async function attach() {
    if (closed || socket || !HAS_CONSOLE.has(store.vms.get(vm.id)?.state)) return;
    setStatus('attaching…', 'busy');
    socket = new WebSocket(consoleSocketUrl(vm.id, TAIL_BYTES));
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      term.reset(); /* a re-attach gets the history again */
      setStatus('attached', 'ok');
    };
    socket.onmessage = (ev) => term.write(new Uint8Array(ev.data));
    socket.onclose = () => {
      socket = null;
      if (!closed) setStatus('detached', 'off');
      if (reattach && !closed) {
        reattach = false;
        setTimeout(attach, 250);
      }
    };
  }

  term.onData((data) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(data);
  });

  return {
    node: el('section', { class: 'card console' },
      el('div', { class: 'card-head' }, el('h2', { text: 'Serial console' }), status),
      screen),
    mount() {
      term.open(screen);
      attach();
    },
    stateChanged() {
      attach();
    },
    restored() {
      reattach = true;
      attach(); /* the old socket may have ended already */
    },
    focus() {
      term.focus();
    },
    close() {
      closed = true;
      if (socket) socket.close();
      term.dispose();
    },
  };
}

function statsPane(vm) {
  const canvas = el('canvas', { class: 'chart', id: 'exits-chart', width: '480', height: '150' });
  const uptimeText = el('dd', { id: 'stat-uptime', text: '–' });
  const exitsText = el('dd', { id: 'stat-exits', text: '–' });
  const consoleText = el('dd', { id: 'stat-console', text: '–' });
  const boots = el('dd', { id: 'stat-boots', text: '–' });
  const reasons = el('dl', { class: 'reasons' });
  const devices = el('dl', { class: 'reasons devices' });
  const devicesHead = el('h3', { text: 'Disks and NICs', hidden: true });
  const rates = [];
  const times = []; // the VM's uptime at each rate
  let previous = null;
  let timer = null;

  function draw() {
    const xLabels = times.length ? [`uptime ${duration(times[0])}`, duration(times[times.length - 1])] : null;
    drawChart(canvas, rates, { label: 'exits per second', format: count, xLabels });
  }

  async function poll() {
    try {
      const stats = await api('GET', `/v1/vms/${encodeURIComponent(vm.id)}/stats`);
      const total = totalExits(stats);
      // A restart or reboot of the worker resets its counters: start the series over.
      if (previous && stats.uptime_s > previous.uptime_s && total >= previous.total) {
        rates.push((total - previous.total) / (stats.uptime_s - previous.uptime_s));
        times.push(stats.uptime_s);
        if (rates.length > CHART_POINTS) {
          rates.shift();
          times.shift();
        }
      } else if (previous && stats.uptime_s < previous.uptime_s) {
        rates.length = 0;
        times.length = 0;
      }
      previous = { uptime_s: stats.uptime_s, total };
      uptimeText.textContent = duration(stats.uptime_s);
      exitsText.textContent = count(total);
      consoleText.textContent = stats.console_bytes == null ? '–' : `${count(stats.console_bytes)} B`;
      boots.textContent = stats.boots ?? '–';
      reasons.replaceChildren(
        ...Object.entries(stats.exits || {})
          .filter(([, n]) => n > 0)
          .flatMap(([reason, n]) => [el('dt', { text: reason }), el('dd', { text: count(n) })]),
      );
      devices.replaceChildren(
        ...(stats.disks || []).flatMap((d, i) => [el('dt', { text: `disk${i}` }),
          el('dd', { text: `read ${bytes(d.read_bytes)} · written ${bytes(d.write_bytes)}` +
            (d.errors ? ` · ${count(d.errors)} errors` : '') + throttled(d) })]),
        ...(stats.nics || []).flatMap((n, i) => [el('dt', { text: `net${i}` }),
          el('dd', { text: `received ${bytes(n.rx_bytes)} · sent ${bytes(n.tx_bytes)}` +
            (n.drops ? ` · ${count(n.drops)} dropped` : '') + throttled(n) })]),
      );
      devicesHead.hidden = !devices.childElementCount;
      draw();
    } catch {
      /* the VM may be gone; the next tick tries again */
    }
  }

  return {
    node: el('section', { class: 'card stats' },
      el('h2', { text: 'Activity' }),
      canvas,
      el('dl', { class: 'figures' },
        el('dt', { text: 'Uptime' }), uptimeText,
        el('dt', { text: 'Exits' }), exitsText,
        el('dt', { text: 'Console output' }), consoleText,
        el('dt', { text: 'Boots' }), boots),
      el('h3', { text: 'Exits by reason' }),
      reasons,
      devicesHead,
      devices),
    mount() {
      draw();
      poll();
      timer = setInterval(poll, STATS_MS);
    },
    close() {
      clearInterval(timer);
    },
  };
}

// The time a device waited for its I/O limits, when it did.
const throttled = (d) => (d.throttled_ns ? ` · throttled ${(d.throttled_ns / 1e9).toFixed(1)} s` : '');

// A device's I/O limits (read-only here; PATCH or `vmctl limits` change them).
function limitsText(l) {
  if (!l) return '';
  const parts = [];
  if (l.bytes_per_s) parts.push(`${bytes(l.bytes_per_s)}/s`);
  if (l.ops_per_s) parts.push(`${count(l.ops_per_s)} ops/s`);
  if (l.burst_bytes) parts.push(`burst ${bytes(l.burst_bytes)}`);
  if (l.burst_ops) parts.push(`burst ${count(l.burst_ops)} ops`);
  return parts.length ? `, limits ${parts.join(' · ')}` : '';
}

// A NIC on a managed network links to it; its address is the static ip, or
// what the network's DHCP leased to its MAC (filled in by fillLeases).
function nicFact(n, i) {
  let where;
  if (n.network) {
    where = ['network ', el('a', { href: `#/networks/${encodeURIComponent(n.network)}`, text: n.network })];
  } else if (n.bridge) {
    where = [`bridge ${n.bridge}`];
  } else {
    where = [`tap ${n.tap}`];
  }
  const ip = n.network
    ? el('span', { class: 'nic-ip', 'data-nic': i, text: n.ip ? `, ip ${n.ip}` : ', ip: dhcp' })
    : null;
  return [el('dt', { text: `net${i}` }),
    el('dd', { 'data-nic': i }, ...where, ip, n.mac ? `, ${n.mac}` : '', limitsText(n.limits))];
}

// The definition's disks and NICs, a row each, named as the stats name them.
function deviceFacts(vm) {
  return [
    ...(vm.disks || []).flatMap((d, i) => [el('dt', { text: `disk${i}` }),
      el('dd', {}, d.volume ? el('a', { href: '#/storage', text: `volume ${d.volume}` }) : el('code', { text: d.path }),
        d.readonly ? ' (read-only)' : '', limitsText(d.limits))]),
    ...(vm.nics || []).flatMap((n, i) => nicFact(n, i)),
  ];
}

const sameMac = (a, b) => a && b && a.toLowerCase() === b.toLowerCase();

// The IP each dynamic NIC on a managed network has leased, from its
// network's leases, matched by MAC (the definition's, else the one the
// network lists for this VM's NIC), else by the VM the lease names.
async function fillLeases(vm, facts) {
  const byNetwork = new Map();
  for (const [i, n] of (vm.nics || []).entries()) {
    if (!n.network || n.ip) continue;
    if (!byNetwork.has(n.network)) {
      byNetwork.set(n.network, api('GET', `/v1/networks/${encodeURIComponent(n.network)}/leases`).catch(() => []));
    }
    const leases = await byNetwork.get(n.network);
    const mac = n.mac || store.networks.get(n.network)?.nics?.find((x) => x.vm_id === vm.id && x.nic === i)?.mac;
    const lease = leases.find((l) => (mac ? sameMac(l.mac, mac) : l.vm_id === vm.id));
    const span = facts.querySelector(`.nic-ip[data-nic="${i}"]`);
    if (span) span.textContent = lease ? `, ip ${lease.ip} (lease)` : ', ip: dhcp, no lease yet';
  }
}

function summary(vm, extra) {
  const actions = el('div', { class: 'actions' });
  const facts = el('dl', { class: 'facts' });
  const title = el('h1', {});
  const render = (current) => {
    title.replaceChildren(current.name, ' ',
      el('span', { class: `state state-${current.state}`, id: 'vm-state', text: current.state }));
    facts.replaceChildren(
      ...(current.member ? [el('dt', { text: 'Member' }), el('dd', { class: 'member', text: current.member })] : []),
      el('dt', { text: 'Mode' }), el('dd', { text: current.mode }),
      el('dt', { text: 'vCPUs' }), el('dd', { text: current.vcpus ?? '–' }),
      el('dt', { text: 'Memory' }), el('dd', { text: mib(current.memory_mib) }),
      el('dt', { text: 'Kernel' }), el('dd', {}, el('code', { text: current.kernel ?? '–' })),
      ...deviceFacts(current),
      el('dt', { text: 'HA' }), el('dd', { class: 'ha', text: current.ha ? `${current.ha} (on another member if this one goes offline)` : 'none' }),
      el('dt', { text: 'Reason' }), el('dd', { text: current.state_reason || '–' }),
    );
    fillLeases(current, facts);
    renderActions(actions, current, { onDeleted: () => { location.hash = '#/'; } });
  };
  render(vm);
  // A guest asks for its lease when it boots: look again now and then.
  const leaseTimer = setInterval(() => fillLeases(store.vms.get(vm.id) || vm, facts), 10000);
  return {
    node: el('section', { class: 'card summary' },
      el('p', {}, el('a', { href: '#/', text: '← All VMs' })), title, actions, extra, facts),
    render,
    close() {
      clearInterval(leaseTimer);
    },
  };
}

export function vmView(main, id) {
  const vm = store.vms.get(id);
  if (!vm) {
    main.replaceChildren(el('section', { class: 'card' },
      el('p', { text: store.loaded ? 'This VM does not exist (any more).' : 'Loading…' }),
      el('p', {}, el('a', { href: '#/', text: '← All VMs' }))));
    return () => {};
  }
  const migration = migratePane(vm);
  const head = summary(vm, migration.node);
  const term = consolePane(vm);
  const stats = statsPane(vm);
  const snapshots = snapshotsPane(vm);
  main.replaceChildren(el('div', { class: 'vm-page', 'data-vm-id': id },
    head.node, el('div', { class: 'vm-body' }, term.node, stats.node), snapshots.node));
  term.mount();
  stats.mount();
  snapshots.mount();
  migration.mount();
  term.focus();
  const unsubscribe = subscribe((kind, changed) => {
    // A VM that migrated away keeps its page, to show how it went.
    if (kind === 'deleted' && changed === id && !migration.leftByMigration()) location.hash = '#/';
    if (changed !== id) return;
    if (kind === 'snapshots') snapshots.refresh();
    if (kind === 'migration') migration.refresh();
    if (kind === 'restored') term.restored();
    if (kind !== 'vm') return;
    head.render(store.vms.get(id));
    term.stateChanged();
    snapshots.stateChanged();
    migration.refresh();
  });
  return () => {
    unsubscribe();
    head.close();
    term.close();
    stats.close();
    snapshots.close();
    migration.close();
  };
}
