// The vmmd API from the browser: requests with the bearer token, problem+json
// errors as ApiError (with the field a validation error names), and the URLs
// of the two streams a browser cannot add headers to, which take ?token=.

const TOKEN_KEY = 'vmmd.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// The field a problem's detail starts with ("vcpus: must be ...",
// "disks[0].path: ..."): the API names what it refused that way.
export function fieldOf(detail) {
  const m = /^([a-z_]+)(\[\d+\])?(\.[a-z_]+)?: /.exec(detail || '');
  return m ? m[1] : null;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.field = fieldOf(problem.detail);
  }
}

// One request; resolves to {status, headers, body} with body parsed by its type.
export async function request(method, path, body, { raw = false } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const type = res.headers.get('Content-Type') || '';
  if (!res.ok) {
    let problem = { title: res.statusText, detail: '' };
    if (type.includes('json')) {
      try {
        problem = await res.json();
      } catch {
        /* keep the status text */
      }
    }
    throw new ApiError(res.status, problem);
  }
  let parsed = null;
  if (raw) parsed = new Uint8Array(await res.arrayBuffer());
  else if (type.includes('json')) parsed = await res.json();
  else if (res.status !== 204) parsed = await res.text();
  return { status: res.status, headers: res.headers, body: parsed };
}

export async function api(method, path, body) {
  return (await request(method, path, body)).body;
}

// POSTs a File as the raw body (application/octet-stream) with XMLHttpRequest, the one
// browser API that reports upload progress: onProgress(loaded, total) as it goes. Resolves
// to {status, body}; an error status rejects with ApiError, as request() does.
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    const token = getToken();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onload = () => {
      let body = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        /* not JSON: keep the status */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body });
      else reject(new ApiError(xhr.status, body || { title: xhr.statusText, detail: '' }));
    };
    xhr.onerror = () => reject(new ApiError(0, { title: 'network error', detail: 'the upload was cut off' }));
    xhr.send(file);
  });
}

function withToken(path) {
  const token = getToken();
  if (!token) return path;
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

export function eventsUrl(since) {
  return withToken(since == null ? '/v1/events' : `/v1/events?since=${since}`);
}

// The socket starts with the last `tail` bytes the guest printed, then live output.
export function consoleSocketUrl(id, tail) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const path = `/v1/vms/${encodeURIComponent(id)}/console?tail=${tail}`;
  return `${scheme}//${location.host}${withToken(path)}`;
}
