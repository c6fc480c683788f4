// api — the public API (docs/API.md) with the user's token.  Every call
// goes through here; the page has no other way to the server's data.

import { token } from './session.js';

export class ApiError extends Error {
	constructor(status, code, message, retryAfter) {
		super(message);
		this.status = status;
		this.code = code;
		this.retryAfter = retryAfter;
	}
}

// Called on a 401 with a token: it expired or was revoked (main.js).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
	onUnauthorized = fn;
}

export function authHeaders() {
	const t = token();
	return t ? { Authorization: `Bearer ${t}` } : {};
}

async function errorOf(resp) {
	let code = 'http_' + resp.status, message = resp.statusText || `HTTP ${resp.status}`;
	try {
		const j = await resp.json();
		if (j && j.error) {
			code = j.error.code;
			message = j.error.message;
		}
	} catch (e) { /* not JSON: keep the status */ }
	return new ApiError(resp.status, code, message, resp.headers.get('Retry-After'));
}

// api('POST', '/v1/vms', {…}) → the decoded answer, or throws ApiError.
export async function api(method, path, body) {
	const headers = authHeaders();
	const init = { method, headers, cache: 'no-store' };
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	const resp = await fetch(path, init);
	if (!resp.ok) {
		const err = await errorOf(resp);
		if (resp.status === 401 && headers.Authorization && path !== '/v1/login')
			onUnauthorized(err);
		throw err;
	}
	const type = resp.headers.get('Content-Type') || '';
	return type.startsWith('application/json') ? resp.json() : resp.text();
}

// A raw upload with progress (fetch() reports none for request bodies):
// PUT the file, onProgress(bytesSent) as it goes.
export function upload(path, file, onProgress) {
	return new Promise((resolve, reject) => {
		const xhr = new XMLHttpRequest();
		xhr.open('PUT', path);
		for (const [k, v] of Object.entries(authHeaders()))
			xhr.setRequestHeader(k, v);
		xhr.setRequestHeader('Content-Type', 'application/octet-stream');
		xhr.upload.onprogress = (e) => onProgress(e.loaded);
		xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload was interrupted'));
		xhr.onload = () => {
			let j = null;
			try { j = JSON.parse(xhr.responseText); } catch (e) { /* keep null */ }
			if (xhr.status >= 200 && xhr.status < 300)
				resolve(j);
			else
				reject(new ApiError(xhr.status, j?.error?.code ?? 'http_' + xhr.status,
					j?.error?.message ?? `HTTP ${xhr.status}`));
		};
		xhr.send(file);
	});
}
