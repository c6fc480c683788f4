// main — logging in, the tabs, and the live stream that keeps the VM
// table current.  See docs/API.md for every call made here.

import { api, authHeaders, setUnauthorizedHandler } from './api.js';
import { closeConsole, initConsole } from './console.js';
import { $, $$ } from './dom.js';
import { EventStream } from './events.js';
import { initImages, loadImages } from './images.js';
import { initResources, loadKeys, loadNetworks } from './resources.js';
import { clearToken, setToken, token } from './session.js';
import { state } from './state.js';
import { applyVmEvent, initVms, loadVms } from './vms.js';

let stream = null;

function live(text, cls) {
	const s = $('#live');
	s.textContent = text;
	s.className = `live ${cls ?? ''}`;
}

// ---- logging in --------------------------------------------------------------

function showLogin(message) {
	$('#app').hidden = true;
	$('#logout').hidden = true;
	$('#whoami').textContent = '';
	$('#login').hidden = false;
	$('#otp-row').hidden = true;
	$('#login-error').textContent = message ?? '';
	$('#login-form').user.focus();
}

// The password first; a user with OTP enrolled is answered 401
// otp_required (not counted as a failure), and then sends both.  A user
// with a code alone leaves the password empty and is asked for the code.
async function login(form) {
	const body = { user: form.user.value };
	if (!form.password.value && $('#otp-row').hidden) {
		$('#otp-row').hidden = false;
		$('#login-error').textContent = 'Enter the code from your authenticator.';
		form.otp.focus();
		return;
	}
	if (form.password.value)
		body.password = form.password.value;
	if (!$('#otp-row').hidden)
		body.otp = form.otp.value;
	try {
		const r = await api('POST', '/v1/login', body);
		form.password.value = '';
		form.otp.value = '';
		setToken(r.token);
		await start();
	} catch (err) {
		if (err.code === 'otp_required') {
			$('#otp-row').hidden = false;
			$('#login-error').textContent = 'Enter the code from your authenticator.';
			form.otp.focus();
			return;
		}
		let msg = err.message;
		if (err.status === 429 && err.retryAfter)
			msg = `Too many attempts: wait ${err.retryAfter} s.`;
		else if (err.code === 'invalid_credentials')
			msg = 'Wrong user, password or code.';
		$('#login-error').textContent = msg;
	}
}

function stopSession(message) {
	stream?.stop();
	stream = null;
	closeConsole();
	clearToken();
	state.vms.clear();
	live('');
	showLogin(message);
}

async function logout() {
	try {
		await api('POST', '/v1/logout', {});
	} catch (e) { /* gone already: forget it all the same */ }
	stopSession('Logged out.');
}

// ---- the session ----------------------------------------------------------

async function start() {
	state.user = await api('GET', '/v1/whoami');
	$('#whoami').textContent = `${state.user.name}${state.user.role === 'admin' ? ' (admin)' : ''}`;
	$('#login').hidden = true;
	$('#app').hidden = false;
	$('#logout').hidden = false;
	await Promise.all([loadImages(), loadNetworks(), loadKeys()]);
	stream = new EventStream(authHeaders, {
		// (Re)connected: what changed while we were away is in a fresh
		// list; from here on, events.
		onOpen: () => loadVms(),
		onEvent: (type, data) => {
			if (type.startsWith('vm.'))
				applyVmEvent(data);
		},
		onState: (s) => live(s === 'live' ? 'live' : s + '…', s),
		onUnauthorized: () => stopSession('Your session has ended: log in again.'),
		onMissing: () => live('no event stream', 'error'),
	});
	stream.start();
}

// ---- tabs ------------------------------------------------------------------

function showTab(name) {
	for (const b of $$('.tabs [data-tab]'))
		b.setAttribute('aria-selected', String(b.dataset.tab === name));
	for (const s of $$('main .tab'))
		s.hidden = s.id !== `tab-${name}`;
}

document.addEventListener('DOMContentLoaded', async () => {
	initVms();
	initResources();
	initImages();
	initConsole();
	setUnauthorizedHandler(() => stopSession('Your session has ended: log in again.'));
	$('.tabs').addEventListener('click', (e) => {
		const b = e.target.closest('[data-tab]');
		if (b)
			showTab(b.dataset.tab);
	});
	$('#login-form').addEventListener('submit', (e) => {
		e.preventDefault();
		login(e.target);
	});
	$('#logout').addEventListener('click', logout);
	if (!token())
		return showLogin();
	try {
		await start();
	} catch (e) {
		stopSession(e.status === 401 ? 'Your session has ended: log in again.' : e.message);
	}
});
