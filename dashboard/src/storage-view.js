// The storage page (#/storage): the pools with their size, free and used
// space; the images, with a progress bar while one imports (driven by the
// store's image.import_progress events) and their delete; the volumes, with
// the image they were cloned from, how (reflink, sparse copy), the VMs that
// use them, a resize and a delete. Two forms: an image import, by upload (a
// File sent as the body, with the upload's own progress bar) or by a path on
// the daemon's host; and a volume, cloned from a ready image or empty.
// Every refusal shows the API's problem detail: next to the form field it
// names, or above the table it concerns.

import { ApiError, api, request, upload } from './api.js';
import { apiForm, clearErrors, field, showError } from './form.js';
import { bytes, el, mib } from './format.js';
import { sortedImages, sortedVolumes, store, subscribe } from './store.js';

const EMPTY_VOLUME = '';

const IMPORT_FIELDS = [
  { name: 'name', label: 'Name', type: 'text', placeholder: 'debian', required: true,
    hint: 'lower-case letters, digits and dashes' },
  { name: 'file', label: 'Upload a file', type: 'file' },
  { name: 'path', label: 'or a path on the daemon\'s host', type: 'text', placeholder: '/srv/images/debian.qcow2',
    hint: 'under an import directory (listed with the pools)' },
  { name: 'format', label: 'Format', type: 'select', options: ['auto', 'raw', 'qcow2'] },
  { name: 'pool', label: 'Pool', type: 'text', placeholder: 'images' },
];

const VOLUME_FIELDS = [
  { name: 'name', label: 'Name', type: 'text', placeholder: 'web-root', required: true,
    hint: 'lower-case letters, digits and dashes' },
  { name: 'image', label: 'Clone of', type: 'select', options: [EMPTY_VOLUME] },
  { name: 'size_mib', label: 'Size (MiB)', type: 'number', min: '1', max: '16777216',
    hint: 'needed for an empty volume; a clone grows to it' },
  { name: 'pool', label: 'Pool', type: 'text', placeholder: 'volumes' },
  { name: 'readonly', label: 'Read-only (may be attached to many VMs)', type: 'checkbox' },
];

const storagePath = (collection, name) => `/v1/${collection}/${encodeURIComponent(name)}`;

function percent(done, total) {
  return total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : 0;
}

function table(id, headers, tbody) {
  return el('table', { class: 'vms storage', id },
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { text: h })))), tbody);
}

// ---- pools -------------------------------------------------------------------------

function poolRow(pool) {
  const used = pool.size_bytes - pool.free_bytes;
  return el('tr', { 'data-pool-name': pool.name },
    el('td', { class: 'name', text: pool.name }),
    el('td', { class: 'path' }, el('code', { text: pool.path })),
    el('td', { class: 'num size', text: bytes(pool.size_bytes) }),
    el('td', { class: 'num free', text: bytes(pool.free_bytes) }),
    el('td', { class: 'num used', text: bytes(pool.used_bytes), title: 'allocated by vmmd\'s files in this pool' }),
    el('td', {}, el('progress', {
      class: 'usage', max: String(pool.size_bytes || 1), value: String(Math.max(0, used)),
      title: `${percent(used, pool.size_bytes)}% of the filesystem in use`,
    })),
    el('td', { class: 'num images', text: pool.images }),
    el('td', { class: 'num volumes', text: pool.volumes }),
    el('td', { class: 'reflink', text: pool.reflink ? 'reflink' : 'sparse copy' }));
}

// ---- images --------------------------------------------------------------------------

function imageState(image) {
  const badge = el('span', { class: `state image-state-${image.state}`, text: image.state, title: image.error || null });
  const p = image.progress;
  if (image.state !== 'importing' || !p) return [badge];
  return [badge, ' ', el('progress', { class: 'import-progress', max: String(p.total_bytes || 1), value: String(p.done_bytes) }),
    ' ', el('span', { class: 'percent', text: `${percent(p.done_bytes, p.total_bytes)}%` })];
}

function imageRow(image, onDelete) {
  const remove = el('button', { type: 'button', class: 'action action-delete', 'data-action': 'delete', text: 'Delete' });
  remove.addEventListener('click', () => onDelete(image, remove));
  return el('tr', { 'data-image-name': image.name, 'data-state': image.state },
    el('td', { class: 'name', text: image.name }),
    el('td', { class: 'image-state' }, ...imageState(image)),
    el('td', { class: 'format', text: image.format || '–' }),
    el('td', { class: 'num size', text: bytes(image.size_bytes) }),
    el('td', { class: 'num allocated', text: bytes(image.allocated_bytes) }),
    el('td', { class: 'sha256' }, image.sha256 ? el('code', { text: image.sha256.slice(0, 12), title: image.sha256 }) : '–'),
    el('td', { class: 'source' }, image.source === 'upload' || !image.source ? (image.source || '–')
      : el('code', { text: image.source.split('/').pop(), title: image.source })),
    el('td', { class: 'volumes', text: (image.volumes || []).join(', ') || '–' }),
    el('td', { class: 'actions' }, remove));
}

// ---- volumes ----------------------------------------------------------------------------

function vmLinks(volume) {
  const vms = volume.vms || [];
  if (!vms.length) return ['–'];
  return vms.flatMap((vm, i) => [i ? ', ' : '',
    el('a', { href: `#/vms/${encodeURIComponent(vm.id)}`, text: vm.name || vm.id })]);
}

function volumeRow(volume, onResize, onDelete) {
  const size = el('input', {
    type: 'number', class: 'resize-size', min: String(volume.size_mib), max: '16777216',
    value: String(volume.size_mib), 'aria-label': `new size of ${volume.name} in MiB`,
  });
  const resize = el('button', { type: 'button', class: 'action', 'data-action': 'resize', text: 'Resize' });
  const remove = el('button', { type: 'button', class: 'action action-delete', 'data-action': 'delete', text: 'Delete' });
  resize.addEventListener('click', () => onResize(volume, Number(size.value), resize));
  remove.addEventListener('click', () => onDelete(volume, remove));
  return el('tr', { 'data-volume-name': volume.name },
    el('td', { class: 'name', text: volume.name }),
    el('td', { class: 'pool', text: volume.pool }),
    el('td', { class: 'num size', text: mib(volume.size_mib) }),
    el('td', { class: 'num allocated', text: bytes(volume.allocated_bytes) }),
    el('td', { class: 'image', text: volume.image ?? '–' }),
    el('td', { class: 'clone', text: volume.clone }),
    el('td', { class: 'readonly', text: volume.readonly ? 'yes' : 'no' }),
    el('td', { class: 'vms' }, ...vmLinks(volume)),
    el('td', { class: 'actions' }, size, resize, remove));
}

// Keeps the clone select's choices the ready images, and the one chosen if it stays.
function fillImages(select) {
  const chosen = select.value;
  select.replaceChildren(el('option', { value: EMPTY_VOLUME, text: '(none: an empty volume)' }),
    ...sortedImages().filter((i) => i.state === 'ready').map((i) => el('option', { value: i.name, text: i.name })));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

// ---- the import form ----------------------------------------------------------------------

function importForm() {
  const formError = el('div', { class: 'form-error', role: 'alert' });
  const submit = el('button', { type: 'submit', class: 'primary', text: 'Import image' });
  const bar = el('progress', { id: 'import-progress', max: '100', value: '0', hidden: true });
  const status = el('div', { class: 'hint', id: 'import-status', role: 'status' });
  const form = el('form', { class: 'card create', id: 'import-form', novalidate: true },
    el('h2', { text: 'Import an image' }), ...IMPORT_FIELDS.map((spec) => field(spec, 'import')),
    bar, status, formError, submit);
  const input = (name) => form.elements[name];

  async function byUpload(name, file) {
    const query = new URLSearchParams({ name, format: input('format').value });
    if (input('pool').value.trim()) query.set('pool', input('pool').value.trim());
    const started = performance.now();
    bar.hidden = false;
    bar.value = 0;
    const res = await upload(`/v1/images?${query}`, file, (loaded, total) => {
      const seconds = (performance.now() - started) / 1000;
      bar.max = total || 1;
      bar.value = loaded;
      status.textContent = `uploading ${percent(loaded, total)}%` +
        (seconds > 0 ? ` · ${(loaded / 1e6 / seconds).toFixed(1)} MB/s` : '');
    });
    return res.status;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    status.textContent = '';
    const name = input('name').value.trim();
    const file = input('file').files[0];
    const path = input('path').value.trim();
    if (!file === !path) {
      formError.textContent = 'Choose a file to upload, or give a path on the daemon\'s host (not both).';
      return;
    }
    submit.disabled = true;
    try {
      let code;
      if (file) {
        code = await byUpload(name, file);
      } else {
        const body = { name, path, format: input('format').value };
        if (input('pool').value.trim()) body.pool = input('pool').value.trim();
        code = (await request('POST', '/v1/images', body)).status;
      }
      // 202: the daemon goes on (a conversion, a copy); the image's row shows how far.
      status.textContent = code === 202 ? `${name}: importing, see its progress in the list` : `${name}: imported`;
      form.reset();
    } catch (err) {
      status.textContent = '';
      showError(form, formError, err instanceof ApiError ? err : new ApiError(0, { detail: err.message }));
    } finally {
      bar.hidden = true;
      submit.disabled = false;
    }
  });
  return form;
}

// ---- the page --------------------------------------------------------------------------------

export function storageView(main) {
  const poolBody = el('tbody');
  const imageBody = el('tbody');
  const volumeBody = el('tbody');
  const importDirs = el('p', { class: 'hint', id: 'import-dirs' });
  const imageError = el('div', { class: 'form-error', id: 'image-error', role: 'alert' });
  const volumeError = el('div', { class: 'form-error', id: 'volume-error', role: 'alert' });
  const noImages = el('p', { class: 'muted empty', text: 'No images yet: import one with the form.' });
  const noVolumes = el('p', { class: 'muted empty', text: 'No volumes yet: create one with the form.' });

  // A delete refused (409: volumes cloned from the image, VMs using the volume) shows the
  // API's words, which name them, in errorBox.
  async function deleteStored(collection, question, name, button, errorBox) {
    errorBox.textContent = '';
    if (!window.confirm(question)) return;
    button.disabled = true;
    try {
      await api('DELETE', storagePath(collection, name));
    } catch (err) {
      errorBox.textContent = err.message;
      button.disabled = false;
    }
  }
  const deleteImage = (image, button) =>
    deleteStored('images', `Delete image ${image.name}?`, image.name, button, imageError);
  const deleteVolume = (volume, button) =>
    deleteStored('volumes', `Delete volume ${volume.name}? Its data goes with it.`, volume.name, button, volumeError);

  async function resizeVolume(volume, size, button) {
    volumeError.textContent = '';
    button.disabled = true;
    try {
      await api('PATCH', storagePath('volumes', volume.name), { size_mib: size });
    } catch (err) {
      volumeError.textContent = `${volume.name}: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  }
  const volumeForm = apiForm({
    id: 'volume-form', title: 'New volume', fields: VOLUME_FIELDS, prefix: 'volume',
    path: '/v1/volumes', submitText: 'Create volume',
    transform: (body) => {
      const { image, ...rest } = body;
      return image && image !== EMPTY_VOLUME ? { ...rest, image } : rest;
    },
    done: (_volume, f) => {
      f.reset();
      fillImages(f.elements.image);
    },
  });

  main.replaceChildren(el('div', { class: 'layout storage-page' },
    el('div', { class: 'stack' },
      el('section', { class: 'card' }, el('h2', { text: 'Pools' }),
        table('pool-table', ['Name', 'Directory', 'Size', 'Free', 'Used by vmmd', 'In use', 'Images', 'Volumes', 'Clones'], poolBody),
        importDirs),
      el('section', { class: 'card' }, el('h2', { text: 'Images' }), imageError,
        table('image-table', ['Name', 'State', 'Format', 'Size', 'On disk', 'SHA-256', 'Source', 'Volumes', ''], imageBody),
        noImages),
      el('section', { class: 'card' }, el('h2', { text: 'Volumes' }), volumeError,
        table('volume-table', ['Name', 'Pool', 'Size', 'On disk', 'Image', 'Clone', 'Read-only', 'VMs', ''], volumeBody),
        noVolumes)),
    el('div', { class: 'stack' }, importForm(), volumeForm)));

  const renderPools = () => {
    poolBody.replaceChildren(...(store.storage.pools || []).map(poolRow));
    const dirs = store.storage.import_dirs || [];
    importDirs.replaceChildren(...(dirs.length
      ? ['Import directories: ', ...dirs.flatMap((d, i) => [i ? ', ' : '', el('code', { text: d })])]
      : ['No import directories: import by upload.']));
  };
  const renderImages = () => {
    const images = sortedImages();
    imageBody.replaceChildren(...images.map((i) => imageRow(i, deleteImage)));
    noImages.hidden = images.length > 0 || !store.storageLoaded;
    fillImages(volumeForm.elements.image);
  };
  const renderVolumes = () => {
    const volumes = sortedVolumes();
    volumeBody.replaceChildren(...volumes.map((v) => volumeRow(v, resizeVolume, deleteVolume)));
    noVolumes.hidden = volumes.length > 0 || !store.storageLoaded;
  };
  // One row again (a progress tick, a resize) leaves the others, and what is typed in them, alone.
  const updateRow = (body, attr, name, make, renderAll) => {
    const old = body.querySelector(`tr[${attr}="${CSS.escape(name)}"]`);
    if (!old) return renderAll();
    old.replaceWith(make());
  };
  renderPools();
  renderImages();
  renderVolumes();
  const unsubscribe = subscribe((kind, name) => {
    if (kind === 'pools') {
      renderPools();
    } else if (kind === 'storage') {
      renderPools();
      renderImages();
      renderVolumes();
    } else if (kind === 'image') {
      const image = store.images.get(name);
      updateRow(imageBody, 'data-image-name', name, () => imageRow(image, deleteImage), renderImages);
      fillImages(volumeForm.elements.image);
    } else if (kind === 'image-deleted') {
      renderImages();
    } else if (kind === 'volume') {
      const volume = store.volumes.get(name);
      updateRow(volumeBody, 'data-volume-name', name, () => volumeRow(volume, resizeVolume, deleteVolume), renderVolumes);
    } else if (kind === 'volume-deleted') {
      renderVolumes();
    }
  });
  return unsubscribe;
}
