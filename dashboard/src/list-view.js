// The VM list (kept live by the store) and the create form, whose
// validation errors come from the API and are shown next to the field the
// problem names.

import { renderActions } from './actions.js';
import { ApiError, api } from './api.js';
import { duration, el, mib, uptime } from './format.js';
import { sortedVms, store, subscribe } from './store.js';

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
];

function field(spec) {
  const id = `create-${spec.name}`;
  let input;
  if (spec.type === 'select') {
    input = el('select', { id, name: spec.name }, ...spec.options.map((o) => el('option', { value: o, text: o })));
  } else {
    input = el('input', {
      id,
      name: spec.name,
      type: spec.type,
      placeholder: spec.placeholder,
      value: spec.value,
      min: spec.min,
      max: spec.max,
      autocomplete: 'off',
      spellcheck: 'false',
    });
  }
  return el(
    'div',
    { class: `field field-${spec.type}`, 'data-field': spec.name },
    el('label', { for: id, text: spec.label }),
    input,
    spec.hint ? el('small', { class: 'hint', text: spec.hint }) : null,
    el('div', { class: 'field-error', id: `${id}-error`, role: 'alert' }),
  );
}

// The request body from the form: empty optional fields are left out.
function formBody(form) {
  const body = {};
  for (const spec of FIELDS) {
    const input = form.elements[spec.name];
    if (spec.type === 'checkbox') {
      if (input.checked) body[spec.name] = true;
    } else if (spec.type === 'number') {
      if (input.value !== '') body[spec.name] = Number(input.value);
    } else if (input.value.trim() !== '' || spec.required) {
      body[spec.name] = input.value.trim();
    }
  }
  return body;
}

function createForm(host) {
  const formError = el('div', { class: 'form-error', role: 'alert' });
  const submit = el('button', { type: 'submit', class: 'primary', text: 'Create VM' });
  const dirs = host?.image_dirs?.length
    ? el('p', { class: 'hint' }, 'Kernels, initrds and disks must lie under ',
        ...host.image_dirs.flatMap((d, i) => [i ? ', ' : '', el('code', { text: d })]), '.')
    : null;
  const form = el('form', { class: 'card create', id: 'create-form', novalidate: true },
    el('h2', { text: 'New VM' }), dirs, ...FIELDS.map(field), formError, submit);

  const clearErrors = () => {
    formError.textContent = '';
    for (const node of form.querySelectorAll('.field')) {
      node.classList.remove('invalid');
      node.querySelector('.field-error').textContent = '';
      node.querySelector('input, select').removeAttribute('aria-invalid');
    }
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    submit.disabled = true;
    try {
      const vm = await api('POST', '/v1/vms', formBody(form));
      form.elements.name.value = '';
      formError.textContent = '';
      form.dispatchEvent(new CustomEvent('created', { detail: vm }));
    } catch (err) {
      const box = err instanceof ApiError && err.field ? form.querySelector(`[data-field="${err.field}"]`) : null;
      if (box) {
        box.classList.add('invalid');
        box.querySelector('.field-error').textContent = err.message;
        const input = box.querySelector('input, select');
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      } else {
        formError.textContent = err.message;
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function row(vm) {
  const actions = el('td', { class: 'actions' });
  renderActions(actions, vm);
  return el(
    'tr',
    { 'data-vm-id': vm.id, 'data-vm-name': vm.name, 'data-state': vm.state },
    el('td', { class: 'name' }, el('a', { href: `#/vms/${encodeURIComponent(vm.id)}`, text: vm.name })),
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
  const empty = el('p', { class: 'muted empty', text: 'No VMs yet: create one with the form.' });
  const table = el('table', { class: 'vms', id: 'vm-table' },
    el('thead', {}, el('tr', {},
      ...['Name', 'State', 'Mode', 'vCPUs', 'Memory', 'Uptime', ''].map((h) => el('th', { text: h })))),
    tbody);
  const form = createForm(host);
  main.replaceChildren(
    el('div', { class: 'layout' },
      el('section', { class: 'card list' }, el('h2', { text: 'Virtual machines' }), table, empty),
      form),
  );

  const render = () => {
    const vms = sortedVms();
    tbody.replaceChildren(...vms.map(row));
    empty.hidden = vms.length > 0 || !store.loaded;
  };
  const updateRow = (id) => {
    const vm = store.vms.get(id);
    const old = tbody.querySelector(`tr[data-vm-id="${CSS.escape(id)}"]`);
    if (!vm || !old) return render();
    old.replaceWith(row(vm));
  };
  render();
  const unsubscribe = subscribe((kind, id) => {
    if (kind === 'vm') updateRow(id);
    else if (kind === 'list' || kind === 'deleted') render();
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
