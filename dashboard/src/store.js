// The VMs as the dashboard knows them. GET /v1/vms gives the list and, in
// its Vmmd-Last-Event-Id header, the id of the newest event that list
// already reflects; the event stream starts right after that id, so no
// change is missed or applied twice. From then on a VM's state comes only
// from events (they arrive in commit order); GET /v1/vms/{id} only fills in
// the definition (name, sizes, started_at), so a slow answer can never put
// an older state back. A dropped stream reconnects with Last-Event-ID.
//
// The managed networks ride on the same stream: GET /v1/networks after the
// VM list, then every network.* event fetches the network it names again
// (GET /v1/networks/{name}), so a replayed event only fetches once more.
//
// Storage too: GET /v1/storage, /v1/images and /v1/volumes after the
// networks; image.* and volume.* events fetch the object they name again,
// except image.import_progress, whose figures go straight into the image
// (several a second while an import runs). A VM's create, change or delete
// fetches the volumes its disks name, whose `vms` lists it.
//
// Snapshots are not kept here: a VM's page lists them itself. The
// snapshot.created, snapshot.deleted and vm.restored events, which name the
// VM by its name, become a 'snapshots' signal with the VM's id, and a
// restore also a 'restored' one (its worker was replaced) and a fetch of
// the VM.
//
// Migrations neither: the vm.migration_started, vm.migration_progress,
// vm.migrated and vm.migration_failed events (and vm.migrated_in on the
// target), which name the VM too, leave their figures in store.migrations
// (by the VM's id) and raise a 'migration' signal. vm.migrated comes before
// the VM's vm.deleted, so a page can tell the VM moved rather than went.

import { ApiError, api, eventsUrl, request } from './api.js';

const STATE_OWNED = new Set(['state', 'state_reason']);
const RESYNC_MS = 2000;

export const store = {
  vms: new Map(),
  networks: new Map(), // by name
  networksLoaded: false,
  storage: { pools: [], import_dirs: [] }, // GET /v1/storage
  images: new Map(), // by name
  volumes: new Map(), // by name
  storageLoaded: false,
  migrations: new Map(), // by VM id: the last migration event's figures, with its state

  status: 'connecting', // connecting | live | reconnecting | offline
  loaded: false,
};

const listeners = new Set();
let source = null;
let resyncTimer = null;
let onUnauthorized = () => {};

// fn(kind, id): kind is 'list', 'vm' (one VM changed), 'deleted' or 'status'; for
// networks 'networks' (the list), 'network' (one changed, id is its name),
// 'network-deleted' and 'forwards' (a network's forwards changed); for storage
// 'storage' (all of it loaded), 'pools', 'image' and 'volume' (one changed, id is its
// name), 'image-deleted' and 'volume-deleted'; for snapshots 'snapshots' (a VM's list
// changed, id is the VM's) and 'restored' (the VM was put back to a snapshot); for
// migrations 'migration' (id is the VM's; store.migrations holds what is known); for the
// cluster 'cluster' (id is the member the event names).
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(kind, id) {
  for (const fn of listeners) fn(kind, id);
}

function setStatus(status) {
  store.status = status;
  emit('status');
}

export function sortedVms() {
  return [...store.vms.values()].sort((a, b) => a.name.localeCompare(b.name));
}

// Takes the definition from a fresh GET; the state stays the event stream's.
function mergeDefinition(vm) {
  const known = store.vms.get(vm.id);
  if (!known) return;
  for (const [key, value] of Object.entries(vm)) {
    if (!STATE_OWNED.has(key)) known[key] = value;
  }
  emit('vm', vm.id);
}

async function refresh(id) {
  try {
    mergeDefinition(await api('GET', `/v1/vms/${encodeURIComponent(id)}`));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) console.warn('vmmd: refresh', id, err);
  }
}

export function sortedNetworks() {
  return [...store.networks.values()].sort((a, b) => a.name.localeCompare(b.name));
}

async function refreshNetwork(name) {
  try {
    store.networks.set(name, await api('GET', `/v1/networks/${encodeURIComponent(name)}`));
    emit('network', name);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      if (store.networks.delete(name)) emit('network-deleted', name);
    } else {
      console.warn('vmmd: refresh network', name, err);
    }
  }
}

// The networks a VM's NICs are on: their `nics` lists name the VM.
function refreshNetworksOf(vm) {
  for (const nic of vm?.nics || []) if (nic.network) refreshNetwork(nic.network);
}

const networkHandlers = {
  'network.created'(data) {
    refreshNetwork(data.name);
  },
  'network.updated'(data) {
    refreshNetwork(data.name);
  },
  'network.deleted'(data) {
    if (store.networks.delete(data.name)) emit('network-deleted', data.name);
  },
  'network.forward_added'(data) {
    refreshNetwork(data.network);
    emit('forwards', data.network);
  },
  'network.forward_removed'(data) {
    refreshNetwork(data.network);
    emit('forwards', data.network);
  },
  'network.dnsmasq_restarted'(data) {
    refreshNetwork(data.name);
  },
  'network.error'(data) {
    refreshNetwork(data.name);
  },
};

export const sortedImages = () => [...store.images.values()].sort((a, b) => a.name.localeCompare(b.name));
export const sortedVolumes = () => [...store.volumes.values()].sort((a, b) => a.name.localeCompare(b.name));

// GET /v1/images/{name} or /v1/volumes/{name} into its map; a 404 removes it.
async function refreshStored(map, collection, kind, name) {
  if (!name) return;
  try {
    map.set(name, await api('GET', `/v1/${collection}/${encodeURIComponent(name)}`));
    emit(kind, name);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      if (map.delete(name)) emit(`${kind}-deleted`, name);
    } else {
      console.warn(`vmmd: refresh ${kind}`, name, err);
    }
  }
}

const refreshImage = (name) => refreshStored(store.images, 'images', 'image', name);
const refreshVolume = (name) => refreshStored(store.volumes, 'volumes', 'volume', name);

// The pools' figures move with every import, clone and delete: one GET for a burst of events.
let poolsTimer = null;
function refreshPools() {
  clearTimeout(poolsTimer);
  poolsTimer = setTimeout(async () => {
    try {
      store.storage = await api('GET', '/v1/storage');
      emit('pools');
    } catch (err) {
      console.warn('vmmd: storage', err);
    }
  }, 250);
}

// The volumes a VM's disks name: their `vms` lists it.
function refreshVolumesOf(vm) {
  for (const disk of vm?.disks || []) if (disk.volume) refreshVolume(disk.volume);
}

const storageHandlers = {
  'image.created'(data) {
    refreshImage(data.name);
    refreshPools();
  },
  'image.import_progress'(data) {
    const image = store.images.get(data.name);
    if (!image) return;
    image.progress = { done_bytes: data.done_bytes, total_bytes: data.total_bytes };
    emit('image', data.name);
  },
  'image.ready'(data) {
    refreshImage(data.name);
    refreshPools();
  },
  'image.failed'(data) {
    refreshImage(data.name);
    refreshPools();
  },
  'image.deleted'(data) {
    if (store.images.delete(data.name)) emit('image-deleted', data.name);
    refreshPools();
  },
  'volume.created'(data) {
    refreshVolume(data.name);
    refreshImage(data.image); // its `volumes` lists the clone
    refreshPools();
  },
  'volume.resized'(data) {
    refreshVolume(data.name);
    refreshPools();
  },
  'volume.deleted'(data) {
    const volume = store.volumes.get(data.name);
    if (store.volumes.delete(data.name)) emit('volume-deleted', data.name);
    refreshImage(volume?.image ?? data.image);
    refreshPools();
  },
};

// The snapshot events name the VM, not its id.
const vmIdByName = (name) => [...store.vms.values()].find((vm) => vm.name === name)?.id;

const snapshotHandlers = {
  'snapshot.created'(data) {
    const id = vmIdByName(data.vm);
    if (id) emit('snapshots', id);
  },
  'snapshot.deleted'(data) {
    const id = vmIdByName(data.vm);
    if (id) emit('snapshots', id);
  },
  'vm.restored'(data) {
    const id = vmIdByName(data.vm);
    if (!id) return;
    emit('snapshots', id);
    emit('restored', id);
    refresh(id);
  },
};

// Each migration event's figures go over what the VM's entry held.
function migrationEvent(data, state) {
  const id = vmIdByName(data.vm);
  if (!id) return;
  const known = store.migrations.get(id);
  // A new migration starts afresh; the others add to the one running.
  const base = state === 'connecting' || !known ? {} : known;
  store.migrations.set(id, { ...base, ...data, state });
  emit('migration', id);
}

const migrationHandlers = {
  'vm.migration_started'(data) {
    migrationEvent(data, 'connecting');
  },
  'vm.migration_progress'(data) {
    migrationEvent(data, 'precopy');
  },
  'vm.migrated'(data) {
    migrationEvent(data, 'done');
  },
  'vm.migration_failed'(data) {
    migrationEvent(data, 'failed');
  },
  'vm.migrated_in'(data) {
    migrationEvent(data, 'arrived');
  },
};

const CLUSTER_EVENTS = ['member_joined', 'member_offline', 'member_online', 'member_removed',
  'evacuation_started', 'evacuation_done'];

const clusterHandlers = {
  ...Object.fromEntries(CLUSTER_EVENTS.map((e) => [`cluster.${e}`, (data) => emit('cluster', data.member)])),
  'vm.ha_restarted'(data) {
    const id = data.id || vmIdByName(data.name);
    if (id) refresh(id);
    emit('cluster', data.member);
  },
};

const handlers = {
  ...networkHandlers,
  ...clusterHandlers,
  ...storageHandlers,
  ...snapshotHandlers,
  ...migrationHandlers,
  'vm.created'(data) {
    if (!store.vms.has(data.id)) {
      store.vms.set(data.id, { ...data, state_reason: null, vcpus: null, memory_mib: null });
      emit('list');
    }
    refresh(data.id).then(() => {
      refreshNetworksOf(store.vms.get(data.id));
      refreshVolumesOf(store.vms.get(data.id));
    });
  },
  'vm.updated'(data) {
    const vm = store.vms.get(data.id);
    if (vm && data.name) vm.name = data.name;
    refreshNetworksOf(vm); // the networks it was on
    refreshVolumesOf(vm); // and volumes
    refresh(data.id).then(() => { // and those it is on now
      refreshNetworksOf(store.vms.get(data.id));
      refreshVolumesOf(store.vms.get(data.id));
    });
  },
  'vm.state_changed'(data) {
    const vm = store.vms.get(data.id);
    if (!vm) return;
    vm.state = data.state;
    vm.state_reason = data.reason ?? null;
    emit('vm', data.id);
    // A start sets started_at and the worker's pid: fetch them.
    if (data.state === 'starting' || data.previous === 'starting') refresh(data.id);
  },
  'vm.deleted'(data) {
    const vm = store.vms.get(data.id);
    if (store.vms.delete(data.id)) emit('deleted', data.id);
    refreshNetworksOf(vm);
    refreshVolumesOf(vm);
  },
  'daemon.started'() {
    emit('daemon');
  },
  // Retention pruned events this page had not seen: what it holds may be
  // stale, so list again and follow from there.
  'events.reset'() {
    connect().catch(() => {});
  },
};

function openStream(since) {
  source = new EventSource(eventsUrl(since));
  source.onopen = () => setStatus('live');
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (a restart in progress, or the token is no longer good): start over.
      setStatus('offline');
      scheduleResync();
    } else {
      setStatus('reconnecting'); // the browser resumes with Last-Event-ID
    }
  };
  for (const [type, handle] of Object.entries(handlers)) {
    source.addEventListener(type, (ev) => {
      try {
        handle(JSON.parse(ev.data));
      } catch (err) {
        console.warn('vmmd: bad event', type, err);
      }
    });
  }
}

function closeStream() {
  if (source) source.close();
  source = null;
  clearTimeout(resyncTimer);
}

function scheduleResync() {
  closeStream();
  resyncTimer = setTimeout(() => connect().catch(() => {}), RESYNC_MS);
}

// Pools, images and volumes (after the VM list, as the networks: a change in between is in
// the events replayed). A daemon without storage routes has none of them.
async function loadStorage() {
  const [storage, images, volumes] = await Promise.all([
    api('GET', '/v1/storage'), api('GET', '/v1/images'), api('GET', '/v1/volumes'),
  ].map((p) => p.catch((err) => {
    console.warn('vmmd: storage', err);
    return null;
  })));
  store.storage = storage || { pools: [], import_dirs: [] };
  store.images = new Map((images || []).map((i) => [i.name, i]));
  store.volumes = new Map((volumes || []).map((v) => [v.name, v]));
  store.storageLoaded = true;
  emit('storage');
}

// Loads the list and follows the event stream from there.
export async function connect(unauthorized) {
  if (unauthorized) onUnauthorized = unauthorized;
  closeStream();
  setStatus('connecting');
  let res;
  try {
    res = await request('GET', '/v1/vms');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setStatus('offline');
      onUnauthorized();
      throw err;
    }
    setStatus('offline');
    scheduleResync();
    throw err;
  }
  store.vms = new Map(res.body.map((vm) => [vm.id, vm]));
  store.loaded = true;
  emit('list');
  // After the VM list: a network changed in between is in the events replayed from its id on.
  try {
    const networks = await api('GET', '/v1/networks');
    store.networks = new Map(networks.map((n) => [n.name, n]));
  } catch (err) {
    console.warn('vmmd: networks', err); // a daemon without them: no networks
    store.networks = new Map();
  }
  store.networksLoaded = true;
  emit('networks');
  await loadStorage();
  const since = res.headers.get('Vmmd-Last-Event-Id');
  openStream(since === null ? null : Number(since));
}

export function disconnect() {
  closeStream();
  store.vms = new Map();
  store.loaded = false;
  store.networks = new Map();
  store.networksLoaded = false;
  store.storage = { pools: [], import_dirs: [] };
  store.images = new Map();
  store.volumes = new Map();
  store.storageLoaded = false;
  setStatus('offline');
}
