// dom — building the page from data.  Text goes in as text (textContent),
// never as markup, so nothing a name or a message holds can become HTML.

// el('td', {class: 'x', dataset: {vm: id}}, 'text', child, …)
export function el(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (v === undefined || v === null || v === false)
			continue;
		if (k === 'dataset')
			Object.assign(e.dataset, v);
		else if (k === 'class')
			e.className = v;
		else
			e.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of children)
		if (c !== undefined && c !== null)
			e.append(c instanceof Node ? c : String(c));
	return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function bytes(n) {
	if (n === null || n === undefined)
		return '';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

// base64 (RFC 4648, padded) of bytes, as the API wants user data.
export function base64(u8) {
	let s = '';
	for (let i = 0; i < u8.length; i += 0x8000)
		s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
	return btoa(s);
}

// A form's error line: set (or clear, with no message).
export function formError(form, message) {
	const p = $('.error', form);
	if (p)
		p.textContent = message || '';
}

let flashTimer;
export function flash(message) {
	const p = $('#flash');
	p.textContent = message;
	p.hidden = false;
	clearTimeout(flashTimer);
	flashTimer = setTimeout(() => { p.hidden = true; }, 8000);
}
