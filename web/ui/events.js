// events — GET /v1/events (server-sent events) read with fetch() and a
// ReadableStream: EventSource cannot send an Authorization header, and
// the token must never go in a URL.
//
// The stream (docs/API.md): "id: SEQ", "event: KIND.ACTION", "data: JSON"
// and ": keepalive" comments.  On (re)connection the caller reloads what
// it shows (onOpen) and then applies events; a silent stream (no bytes,
// not even a keepalive, for STALL_MS) counts as dropped, and a dropped
// one is reopened after 1, 2, 4 … 30 s, sending Last-Event-ID.

const STALL_MS = 90000;

export class EventStream {
	// handlers: onOpen(), onEvent(type, data), onState('live'|'connecting'|…),
	// onUnauthorized(), onMissing() (404: this hcd has no event stream)
	constructor(headersFn, handlers) {
		this.headersFn = headersFn;
		this.h = handlers;
		this.stopped = false;
		this.lastId = null;
	}

	start() {
		this.run();
	}

	stop() {
		this.stopped = true;
		this.abort?.abort();
	}

	async run() {
		let delay = 1000;
		while (!this.stopped) {
			this.h.onState('connecting');
			this.abort = new AbortController();
			try {
				const headers = { ...this.headersFn(), Accept: 'text/event-stream' };
				if (this.lastId !== null)
					headers['Last-Event-ID'] = this.lastId;
				const resp = await fetch('/v1/events', { headers, cache: 'no-store',
									 signal: this.abort.signal });
				if (resp.status === 401)
					return this.h.onUnauthorized();
				if (resp.status === 404)
					return this.h.onMissing();
				if (!resp.ok)
					throw new Error(`HTTP ${resp.status}`);
				this.h.onState('live');
				await this.h.onOpen();
				delay = 1000;
				await this.read(resp.body);
			} catch (e) {
				if (this.stopped)
					return;
			}
			this.h.onState('reconnecting');
			await new Promise((r) => setTimeout(r, delay));
			delay = Math.min(delay * 2, 30000);
		}
	}

	async read(body) {
		const reader = body.pipeThrough(new TextDecoderStream()).getReader();
		let buf = '', type = '', data = [];
		let watchdog = setTimeout(() => this.abort.abort(), STALL_MS);
		try {
			for (;;) {
				const { value, done } = await reader.read();
				if (done)
					return;
				clearTimeout(watchdog);
				watchdog = setTimeout(() => this.abort.abort(), STALL_MS);
				buf += value;
				// Lines end in LF, CRLF or CR; a CR last in the buffer may
				// be the first half of a CRLF: wait for the next chunk.
				let m;
				while ((m = /\r\n|\n|\r(?!$)/.exec(buf)) !== null) {
					const line = buf.slice(0, m.index);
					buf = buf.slice(m.index + m[0].length);
					if (line === '') {
						if (data.length)
							this.dispatch(type || 'message', data.join('\n'));
						type = '';
						data = [];
						continue;
					}
					if (line.startsWith(':'))
						continue;             // a comment: keepalive
					const colon = line.indexOf(':');
					const field = colon < 0 ? line : line.slice(0, colon);
					let v = colon < 0 ? '' : line.slice(colon + 1);
					if (v.startsWith(' '))
						v = v.slice(1);
					if (field === 'data')
						data.push(v);
					else if (field === 'event')
						type = v;
					else if (field === 'id' && !v.includes('\0'))
						this.lastId = v;
				}
			}
		} finally {
			clearTimeout(watchdog);
		}
	}

	dispatch(type, text) {
		let data;
		try {
			data = JSON.parse(text);
		} catch (e) {
			return;                               // not ours to show
		}
		this.h.onEvent(type, data);
	}
}
