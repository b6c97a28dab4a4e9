// One VM: its state and actions (live from the store), the serial console in
// a terminal widget over the console WebSocket, and a chart of exits per
// second from the stats endpoint.
//
// The console WebSocket asks for the tail of what the guest printed
// (?tail=): the worker sends that history and then the live output as one
// stream, so nothing printed around the moment of attach is lost or doubled.

import { Terminal } from './xterm.mjs';
import { renderActions } from './actions.js';
import { api, consoleSocketUrl } from './api.js';
import { drawChart } from './chart.js';
import { bytes, count, duration, el, mib } from './format.js';
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
            (d.errors ? ` · ${count(d.errors)} errors` : '') })]),
        ...(stats.nics || []).flatMap((n, i) => [el('dt', { text: `net${i}` }),
          el('dd', { text: `received ${bytes(n.rx_bytes)} · sent ${bytes(n.tx_bytes)}` +
            (n.drops ? ` · ${count(n.drops)} dropped` : '') })]),
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

// The definition's disks and NICs, a row each, named as the stats name them.
function deviceFacts(vm) {
  return [
    ...(vm.disks || []).flatMap((d, i) => [el('dt', { text: `disk${i}` }),
      el('dd', {}, el('code', { text: d.path }), d.readonly ? ' (read-only)' : '')]),
    ...(vm.nics || []).flatMap((n, i) => [el('dt', { text: `net${i}` }),
      el('dd', { text: `${n.tap ? `tap ${n.tap}` : `network ${n.network}`}${n.mac ? `, ${n.mac}` : ''}` })]),
  ];
}

function summary(vm) {
  const actions = el('div', { class: 'actions' });
  const facts = el('dl', { class: 'facts' });
  const title = el('h1', {});
  const render = (current) => {
    title.replaceChildren(current.name, ' ',
      el('span', { class: `state state-${current.state}`, id: 'vm-state', text: current.state }));
    facts.replaceChildren(
      el('dt', { text: 'Mode' }), el('dd', { text: current.mode }),
      el('dt', { text: 'vCPUs' }), el('dd', { text: current.vcpus ?? '–' }),
      el('dt', { text: 'Memory' }), el('dd', { text: mib(current.memory_mib) }),
      el('dt', { text: 'Kernel' }), el('dd', {}, el('code', { text: current.kernel ?? '–' })),
      ...deviceFacts(current),
      el('dt', { text: 'Reason' }), el('dd', { text: current.state_reason || '–' }),
    );
    renderActions(actions, current, { onDeleted: () => { location.hash = '#/'; } });
  };
  render(vm);
  return {
    node: el('section', { class: 'card summary' },
      el('p', {}, el('a', { href: '#/', text: '← All VMs' })), title, actions, facts),
    render,
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
  const head = summary(vm);
  const term = consolePane(vm);
  const stats = statsPane(vm);
  main.replaceChildren(el('div', { class: 'vm-page', 'data-vm-id': id },
    head.node, el('div', { class: 'vm-body' }, term.node, stats.node)));
  term.mount();
  stats.mount();
  term.focus();
  const unsubscribe = subscribe((kind, changed) => {
    if (kind === 'deleted' && changed === id) location.hash = '#/';
    if (kind !== 'vm' || changed !== id) return;
    head.render(store.vms.get(id));
    term.stateChanged();
  });
  return () => {
    unsubscribe();
    term.close();
    stats.close();
  };
}
