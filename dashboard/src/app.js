// The dashboard's entry point: login when the daemon wants a token (it is
// served over TCP), then the VM list (#/) or one VM (#/vms/<id>), the
// networks (#/networks) or one network (#/networks/<name>), the storage
// (#/storage), the cluster (#/cluster), all kept live by the event stream.

import { setLifecycle } from './actions.js';
import { ApiError, api, getToken, setToken } from './api.js';
import { clusterView } from './cluster-view.js';
import { el } from './format.js';
import { listView } from './list-view.js';
import { networkView, networksView } from './network-view.js';
import { storageView } from './storage-view.js';
import { connect, disconnect, store, subscribe } from './store.js';
import { vmView } from './vm-view.js';

const main = document.getElementById('main');
const conn = document.getElementById('conn');
const hostInfo = document.getElementById('host-info');
const logout = document.getElementById('logout');
const toastBox = document.getElementById('toast');

let host = null;
let closeView = () => {};
let toastTimer = null;

function toast(message) {
  toastBox.textContent = message;
  toastBox.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toastBox.hidden = true; }, 6000);
}

const nav = document.getElementById('nav');

function route() {
  if (!host) return;
  closeView();
  const vm = /^#\/vms\/([^/]+)$/.exec(location.hash);
  const network = /^#\/networks\/([^/]+)$/.exec(location.hash);
  let section = 'vms';
  if (network || location.hash === '#/networks') section = 'networks';
  else if (location.hash === '#/storage') section = 'storage';
  else if (location.hash === '#/cluster') section = 'cluster';
  for (const link of nav.querySelectorAll('a')) link.classList.toggle('current', link.dataset.nav === section);
  if (vm) closeView = vmView(main, decodeURIComponent(vm[1]));
  else if (network) closeView = networkView(main, decodeURIComponent(network[1]));
  else if (section === 'networks') closeView = networksView(main);
  else if (section === 'storage') closeView = storageView(main);
  else if (section === 'cluster') closeView = clusterView(main);
  else closeView = listView(main, host);
}

function showLogin(message) {
  disconnect();
  closeView();
  closeView = () => {};
  host = null;
  hostInfo.textContent = '';
  logout.hidden = true;
  const error = el('div', { class: 'form-error', id: 'login-error', role: 'alert', text: message || '' });
  const input = el('input', {
    id: 'login-token', name: 'token', type: 'password', autocomplete: 'current-password', required: true,
  });
  const form = el('form', { class: 'card login', id: 'login-form' },
    el('h2', { text: 'Sign in' }),
    el('p', { class: 'muted' }, 'This vmmd serves its API over TCP and wants its token: the contents of ',
      el('code', { text: 'token' }), ' in its state directory.'),
    el('div', { class: 'field' }, el('label', { for: 'login-token', text: 'API token' }), input),
    error,
    el('button', { type: 'submit', class: 'primary', text: 'Sign in' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    error.textContent = '';
    if (!(await start())) {
      setToken('');
      showLogin('That token was not accepted.');
    }
  });
  main.replaceChildren(form);
  input.focus();
}

// Loads the host and the VMs; false when the daemon wants a (different) token.
async function start() {
  try {
    host = await api('GET', '/v1/host');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return false;
    main.replaceChildren(el('p', { class: 'form-error', text: `vmmd cannot be reached: ${err.message}` }));
    return true;
  }
  hostInfo.textContent = `${host.version} · KVM ${host.kvm.flavour}`;
  hostInfo.title = host.kvm.meaning;
  setLifecycle(host.lifecycle, toast);
  logout.hidden = !getToken();
  try {
    await connect(() => showLogin('The token is no longer accepted.'));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return true;
  }
  route();
  return true;
}

subscribe((kind) => {
  if (kind === 'status') {
    conn.dataset.status = store.status;
    conn.textContent = store.status;
  } else if (kind === 'daemon') {
    toast('vmmd restarted');
  }
});

logout.addEventListener('click', () => {
  setToken('');
  showLogin('Signed out.');
});
window.addEventListener('hashchange', route);

start().then((ok) => {
  if (!ok) showLogin();
});
