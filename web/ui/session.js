// session — the user's bearer token, and nothing else of theirs.
//
// Kept in sessionStorage: it survives a reload of this tab and dies with
// the tab (it is neither shared with other tabs nor kept across browser
// restarts), and it is only ever sent in an Authorization header (fetch,
// XMLHttpRequest) or as a WebSocket subprotocol — never in a URL, never
// in a cookie, so no other site can make the browser use it (the API
// takes bearer tokens only: there is nothing for a forged request to
// ride on).  Script injection is what could read it; the
// Content-Security-Policy allows no script but this origin's files.

const KEY = 'hackcloud.token';

export function token() {
	return sessionStorage.getItem(KEY);
}

export function setToken(t) {
	sessionStorage.setItem(KEY, t);
}

export function clearToken() {
	sessionStorage.removeItem(KEY);
}
