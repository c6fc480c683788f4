// resources — networks and SSH keys: a table and a form each.

import { api } from './api.js';
import { $, el, flash, formError } from './dom.js';
import { changed, on, state } from './state.js';

export async function loadNetworks() {
	state.networks = await api('GET', '/v1/networks');
	changed('networks');
}

export async function loadKeys() {
	state.keys = await api('GET', '/v1/keys');
	changed('keys');
}

const del = () => el('button', { type: 'button', dataset: { action: 'delete' } }, 'Delete');

function renderNetworks() {
	$('#net-table tbody').replaceChildren(...state.networks.map((n) =>
		el('tr', { dataset: { id: n.id, name: n.name } },
			el('td', { class: 'name' }, n.name), el('td', { class: 'mono' }, n.id),
			el('td', { class: 'mono' }, n.bridge), el('td', { class: 'mono' }, n.ipv6),
			el('td', { class: 'mono' }, n.ipv4 ?? ''), el('td', { class: 'actions' }, del()))));
}

function renderKeys() {
	$('#key-table tbody').replaceChildren(...state.keys.map((k) =>
		el('tr', { dataset: { id: k.id, name: k.name } },
			el('td', { class: 'name' }, k.name), el('td', { class: 'mono' }, k.id),
			el('td', {}, k.type), el('td', { class: 'mono' }, k.fingerprint),
			el('td', { class: 'actions' }, del()))));
}

// Delete buttons of a table: DELETE path/ID, then reload.
function deletes(table, path, what, reload) {
	$(table).addEventListener('click', async (e) => {
		const row = e.target.closest('tr');
		if (!e.target.closest('button[data-action=delete]') || !row)
			return;
		if (!confirm(`Delete the ${what} ${row.dataset.name}?`))
			return;
		try {
			await api('DELETE', `${path}/${row.dataset.id}`);
		} catch (err) {
			flash(`${row.dataset.name}: ${err.message}`);
		}
		await reload();
	});
}

// A form whose submit calls fn(form), shows its error, reloads.
function submits(form, fn, reload) {
	$(form).addEventListener('submit', async (e) => {
		e.preventDefault();
		formError(e.target);
		try {
			await fn(e.target);
			e.target.reset();
			await reload();
		} catch (err) {
			formError(e.target, err.message);
		}
	});
}

export function initResources() {
	on('networks', renderNetworks);
	on('keys', renderKeys);
	deletes('#net-table', '/v1/networks', 'network', loadNetworks);
	deletes('#key-table', '/v1/keys', 'key', loadKeys);
	submits('#net-form', (f) => {
		// Members may only take prefixes of the tenant pools: left
		// out, the API picks the next free one.
		const body = { name: f.name.value };
		if (f.ipv6.value.trim())
			body.ipv6 = f.ipv6.value.trim();
		if (f.ipv4.value.trim())
			body.ipv4 = f.ipv4.value.trim();
		return api('POST', '/v1/networks', body);
	}, loadNetworks);
	submits('#key-form', async (f) => {
		const file = f.pubkey_file.files[0];
		const pubkey = file ? await file.text() : f.pubkey.value;
		return api('POST', '/v1/keys', { name: f.name.value, pubkey: pubkey.trim() });
	}, loadKeys);
}
