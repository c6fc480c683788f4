// vms — the VM table (live from /v1/events) and the create form.

import { api } from './api.js';
import { openConsole } from './console.js';
import { $, base64, el, flash, formError } from './dom.js';
import { changed, on, state } from './state.js';

export async function loadVms() {
	const list = await api('GET', '/v1/vms');
	state.vms = new Map(list.map((vm) => [vm.id, vm]));
	changed('vms');
}

// An event of the stream: kind "vm", object null when deleted.
export function applyVmEvent(ev) {
	if (ev.kind !== 'vm' || !ev.id)
		return;
	if (ev.object === null || ev.action === 'deleted')
		state.vms.delete(ev.id);
	else if (ev.object)
		state.vms.set(ev.id, ev.object);
	changed('vms');
}

function addresses(vm) {
	const out = [];
	for (const nic of vm.nics ?? []) {
		if (nic.ipv6)
			out.push(nic.ipv6);
		if (nic.ipv4)
			out.push(nic.ipv4);
	}
	return out.join(' ');
}

function actions(vm) {
	const b = (action, label, enabled) =>
		el('button', { type: 'button', dataset: { action }, disabled: !enabled }, label);
	const running = vm.state === 'running';
	return el('td', { class: 'actions' },
		b('start', 'Start', vm.desired !== 'running' || vm.state === 'error'),
		b('stop', 'Stop', vm.desired === 'running'),
		b('force-stop', 'Force stop', vm.state !== 'stopped'),
		b('reboot', 'Reboot', running),
		b('console', 'Console', running),
		b('delete', 'Delete', true));
}

let shown = '';

function render() {
	const tbody = $('#vm-table tbody');
	const vms = [...state.vms.values()].sort((a, b) => a.name.localeCompare(b.name));
	// Rows are rebuilt only when something in them changed: a button
	// under the pointer stays the same button.
	const now = JSON.stringify(vms);
	if (now === shown)
		return;
	shown = now;
	tbody.replaceChildren(...vms.map((vm) =>
		el('tr', { dataset: { id: vm.id, name: vm.name } },
			el('td', { class: 'name' }, vm.name),
			el('td', { class: 'mono' }, vm.id),
			el('td', {}, el('span', { class: `state state-${vm.state}`, title: vm.error ?? '' },
				vm.state)),
			el('td', {}, vm.desired),
			el('td', {}, vm.image),
			el('td', {}, vm.cpus),
			el('td', {}, `${vm.memory_mib} MiB`),
			el('td', { class: 'mono' }, addresses(vm)),
			el('td', {}, vm.host ?? ''),
			actions(vm))));
	$('#vm-empty').hidden = vms.length > 0;
}

async function act(vm, action) {
	switch (action) {
	case 'start':
		return api('POST', `/v1/vms/${vm.id}/start`, {});
	case 'stop':
		return api('POST', `/v1/vms/${vm.id}/stop`, {});
	case 'force-stop':
		return api('POST', `/v1/vms/${vm.id}/stop`, { force: true });
	case 'reboot':
		return api('POST', `/v1/vms/${vm.id}/reboot`, {});
	case 'console':
		return openConsole(vm);
	case 'delete':
		if (!confirm(`Delete the VM ${vm.name}? Its disks go with it.`))
			return;
		return api('DELETE', `/v1/vms/${vm.id}`);
	}
}

// The form's choices follow the images, networks and keys there are.
function renderChoices() {
	const sel = $('#vm-form select[name=image]');
	const keep = sel.value;
	sel.replaceChildren(...state.images.filter((i) => i.state === 'ready').map((i) =>
		el('option', { value: i.id }, `${i.name} (${i.boot})`)));
	if ([...sel.options].some((o) => o.value === keep))
		sel.value = keep;
	const checks = (box, items, name, checked) => {
		const was = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
		box.replaceChildren(...items.map((it) => el('label', { class: 'inline' },
			el('input', { type: 'checkbox', name, value: it.name,
				      checked: was.size ? was.has(it.name) : checked }),
			` ${it.name}`)));
		if (!items.length)
			box.append(el('span', { class: 'muted' }, 'none'));
	};
	checks($('#vm-form-networks'), state.networks, 'networks', false);
	// By default a VM gets all its owner's keys, as the API does.
	checks($('#vm-form-keys'), state.keys, 'keys', true);
}

async function userData(form) {
	const file = form.user_data_file.files[0];
	if (file)
		return base64(new Uint8Array(await file.arrayBuffer()));
	const text = form.user_data.value;
	return text ? base64(new TextEncoder().encode(text)) : undefined;
}

async function create(form) {
	const body = {
		name: form.name.value,
		image: form.image.value,
		cpus: Number(form.cpus.value),
		memory_mib: Number(form.memory_mib.value),
		networks: [...form.querySelectorAll('input[name=networks]:checked')].map((i) => i.value),
		keys: [...form.querySelectorAll('input[name=keys]:checked')].map((i) => i.value),
		config_drive: form.config_drive.checked,
		start: form.start.checked,
	};
	const ud = await userData(form);
	if (ud !== undefined)
		body.user_data = ud;
	const vm = await api('POST', '/v1/vms', body);
	// The stream will say so too; show it at once all the same.
	state.vms.set(vm.id, vm);
	changed('vms');
	form.reset();
	renderChoices();
	$('#vm-create').open = false;
}

export function initVms() {
	on('vms', render);
	on('images', renderChoices);
	on('networks', renderChoices);
	on('keys', renderChoices);
	$('#vm-table').addEventListener('click', async (e) => {
		const button = e.target.closest('button[data-action]');
		const vm = state.vms.get(e.target.closest('tr')?.dataset.id);
		if (!button || !vm)
			return;
		try {
			await act(vm, button.dataset.action);
		} catch (err) {
			flash(`${vm.name}: ${err.message}`);
		}
	});
	$('#vm-form').addEventListener('submit', async (e) => {
		e.preventDefault();
		formError(e.target);
		try {
			await create(e.target);
		} catch (err) {
			formError(e.target, err.message);
		}
	});
}
