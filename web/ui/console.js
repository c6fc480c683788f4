// console — a VM's serial console in xterm.js over a WebSocket
// (GET /v1/vms/{id}/console, subprotocol "hackcloud.console").
//
// A browser cannot put an Authorization header on a WebSocket, and the
// token must never be in a URL: it goes as a second subprotocol,
// "bearer.TOKEN", which only the handshake's headers carry; hcd answers
// with "hackcloud.console" alone.  What the guest prints arrives in
// binary frames and is written to the terminal as bytes (xterm decodes
// UTF-8); keys go back as text frames.
//
// xterm.js (npm @xterm/xterm, served from /ui/xterm/) is loaded the first
// time a console opens.  Its DOM renderer would add <style> elements,
// which the page's policy refuses: app.css gives the terminal the same
// rules instead.

import { $ } from './dom.js';
import { token } from './session.js';

let current = null;        // { ws, term, vm }

function status(text) {
	$('#console-state').textContent = text;
}

export function closeConsole() {
	if (!current)
		return;
	const { ws, term } = current;
	current = null;
	ws.onclose = null;
	if (ws.readyState <= WebSocket.OPEN)
		ws.close(1000, 'closed by the user');
	term.dispose();
	const dlg = $('#console');
	if (dlg.open)
		dlg.close();
}

export async function openConsole(vm) {
	closeConsole();
	let Terminal;
	try {
		({ Terminal } = await import('/ui/xterm/lib/xterm.mjs'));
	} catch (e) {
		throw new Error('xterm.js is not installed on this hcd (scripts/deps.sh runs npm ci in web/)');
	}
	const dlg = $('#console');
	$('#console-title').textContent = `Console of ${vm.name}`;
	status('connecting…');
	dlg.showModal();
	const term = new Terminal({ cols: 100, rows: 30, fontFamily: 'monospace', fontSize: 14,
				    scrollback: 2000, cursorBlink: true });
	const box = $('#term');
	box.replaceChildren();
	term.open(box);
	term.focus();

	const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
	const ws = new WebSocket(`${scheme}//${location.host}/v1/vms/${encodeURIComponent(vm.id)}/console`,
				 ['hackcloud.console', `bearer.${token()}`]);
	ws.binaryType = 'arraybuffer';
	current = { ws, term, vm };
	ws.onopen = () => {
		status('connected');
		ws.send('\r');                                // show the prompt
	};
	ws.onmessage = (e) => {
		term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
	};
	ws.onclose = (e) => {
		status(`closed${e.code ? ' (' + e.code + (e.reason ? ': ' + e.reason : '') + ')' : ''}`);
		term.write('\r\n\x1b[2m[the console is closed]\x1b[0m\r\n');
	};
	term.onData((d) => {
		if (ws.readyState === WebSocket.OPEN)
			ws.send(d);
	});
}

export function initConsole() {
	$('#console-close').addEventListener('click', closeConsole);
	// Escape closes the dialog itself: end the session with it.
	$('#console').addEventListener('close', closeConsole);
}
