// images — the image table, uploads (the three steps of docs/API.md,
// with the bytes sent shown as they go) and imports from a URL (with the
// bytes hcd has downloaded).
//
// The event stream carries VMs and hosts, not images: while an import
// runs, its image alone is asked for once a second until it is ready or
// failed — a watch with an end, not a poll of the page's state.

import { api, upload } from './api.js';
import { $, $$, bytes, el, flash, formError } from './dom.js';
import { changed, on, state } from './state.js';

const WATCH_MS = 1000;
const watching = new Set();

export async function loadImages() {
	state.images = await api('GET', '/v1/images');
	changed('images');
	for (const img of state.images)
		if (img.state === 'importing')
			watch(img.id);
}

function progressOf(img) {
	const p = img.progress;
	if (img.state !== 'importing' || !p)
		return null;
	const bar = el('progress', { max: p.total ?? 1, value: p.total ? p.done : 0 });
	if (!p.total)
		bar.removeAttribute('value');             // indeterminate: size unknown
	return el('span', {}, bar, ` ${bytes(p.done)}${p.total ? ' of ' + bytes(p.total) : ''}`);
}

function render() {
	$('#image-table tbody').replaceChildren(...state.images.map((i) =>
		el('tr', { dataset: { id: i.id, name: i.name } },
			el('td', { class: 'name' }, i.name), el('td', { class: 'mono' }, i.id),
			el('td', {}, el('span', { class: `state state-${i.state}`, title: i.error ?? '' },
				i.state), ' ', progressOf(i)),
			el('td', {}, i.boot), el('td', {}, i.format), el('td', {}, bytes(i.size)),
			el('td', {}, i.visibility), el('td', {}, i.owner),
			el('td', { class: 'actions' },
				el('button', { type: 'button', dataset: { action: 'delete' } }, 'Delete')))));
}

async function watch(id) {
	if (watching.has(id))
		return;
	watching.add(id);
	try {
		for (;;) {
			await new Promise((r) => setTimeout(r, WATCH_MS));
			let img;
			try {
				img = await api('GET', `/v1/images/${id}`);
			} catch (e) {
				return;                           // gone
			}
			const at = state.images.findIndex((i) => i.id === id);
			if (at < 0)
				return;
			state.images[at] = img;
			changed('images');
			if (img.state !== 'importing') {
				if (img.state === 'error')
					flash(`import of ${img.name} failed: ${img.error}`);
				return;
			}
		}
	} finally {
		watching.delete(id);
	}
}

// POST the image, PUT its parts with progress, finalize; on any failure
// delete what was made, so a failed upload leaves nothing behind.
async function uploadImage(form) {
	const boot = form.boot.value;
	const parts = boot === 'disk'
		? [['disk', form.disk.files[0]]]
		: [['kernel', form.kernel.files[0]], ['initrd', form.initrd.files[0]]];
	const files = parts.filter(([, f]) => f);
	if (!files.some(([p]) => p === boot))
		throw new Error(`choose the ${boot} file`);
	const body = { name: form.name.value, boot, visibility: form.public.checked ? 'public' : 'private' };
	if (boot === 'kernel') {
		body.initrd = Boolean(form.initrd.files[0]);
		if (form.cmdline.value)
			body.cmdline = form.cmdline.value;
	}
	const img = await api('POST', '/v1/images', body);
	const bar = $('progress', form);
	const total = files.reduce((n, [, f]) => n + f.size, 0);
	let before = 0;
	bar.hidden = false;
	bar.max = total || 1;
	bar.value = 0;
	try {
		await loadImages();
		for (const [part, file] of files) {
			await upload(`/v1/images/${img.id}/files/${part}`, file, (sent) => {
				bar.value = before + sent;
			});
			before += file.size;
		}
		bar.removeAttribute('value');                   // checking the disk
		await api('POST', `/v1/images/${img.id}/finalize`, {});
	} catch (err) {
		await api('DELETE', `/v1/images/${img.id}`).catch(() => {});
		throw err;
	} finally {
		bar.hidden = true;
	}
}

async function importImage(form) {
	const body = { name: form.name.value, url: form.url.value,
		       visibility: form.public.checked ? 'public' : 'private' };
	if (form.sha256.value)
		body.sha256 = form.sha256.value.toLowerCase();
	const img = await api('POST', '/v1/images', body);
	state.images.push(img);
	changed('images');
	watch(img.id);
}

function submits(sel, fn) {
	$(sel).addEventListener('submit', async (e) => {
		const form = e.target;
		e.preventDefault();
		formError(form);
		$('button[type=submit]', form).disabled = true;
		try {
			await fn(form);
			form.reset();
			showBootFields(form);
		} catch (err) {
			formError(form, err.message);
		} finally {
			$('button[type=submit]', form).disabled = false;
			await loadImages().catch(() => {});
		}
	});
}

function showBootFields(form) {
	for (const l of $$('[data-boot]', form))
		l.hidden = l.dataset.boot !== form.boot.value;
}

export function initImages() {
	on('images', render);
	const up = $('#upload-form');
	up.boot.addEventListener('change', () => showBootFields(up));
	submits('#upload-form', uploadImage);
	submits('#import-form', importImage);
	$('#image-table').addEventListener('click', async (e) => {
		const row = e.target.closest('tr');
		if (!e.target.closest('button[data-action=delete]') || !row)
			return;
		if (!confirm(`Delete the image ${row.dataset.name}?`))
			return;
		try {
			await api('DELETE', `/v1/images/${row.dataset.id}`);
		} catch (err) {
			flash(`${row.dataset.name}: ${err.message}`);
		}
		await loadImages();
	});
}
