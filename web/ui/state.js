// state — what the page shows, as the API last said it, and who wants to
// hear of changes.  The VMs follow /v1/events; networks, keys and images
// are reloaded after this page changes them.

export const state = {
	user: null,
	vms: new Map(),        // id → VM object (docs/API.md)
	networks: [],
	keys: [],
	images: [],
};

const listeners = new Map();   // what → [fn]

export function on(what, fn) {
	if (!listeners.has(what))
		listeners.set(what, []);
	listeners.get(what).push(fn);
}

export function changed(what) {
	for (const fn of listeners.get(what) ?? [])
		fn();
}
