// gigatile viewer: the image list, a Leaflet deep-zoom view over the Gigaview tile API, deep
// links, uploads and download tracking. Plain script, no framework.
//
// Safety rules kept throughout: every string that comes from the server or the user is put in
// the page with textContent or attributes (never innerHTML), links are only made from http and
// https URLs, and every URL is relative to the page, so the viewer works under a path prefix.
'use strict';

(() => {
  const TILE = 256;
  const OVERZOOM = 2;
  const LIST_POLL_BUSY_MS = 2000;
  const LIST_POLL_IDLE_MS = 10000;
  const META_POLL_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  /** The path segment of an id: `/` and everything else unsafe percent-encoded. */
  const idSegment = (id) => encodeURIComponent(id);
  const imageBase = (id) => `api/images/${idSegment(id)}`;
  /** An image's tiles; when the server signs URLs, behind the `s/{signature}/` prefix that its
   *  list entry and metadata carry. */
  const tilesBase = (id, signature) => `${signature ? `s/${signature}/` : ''}${imageBase(id)}/tiles`;
  const tileUrl = (id, signature, z, x, y) => `${tilesBase(id, signature)}/${z}/${x}/${y}.jpg`;

  const formatBytes = (n) => {
    if (!Number.isFinite(n)) return '–';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
  };
  const formatPixels = (w, h) => {
    const mp = (w * h) / 1e6;
    const size = `${w.toLocaleString('en-US')} × ${h.toLocaleString('en-US')}`;
    return mp >= 1 ? `${size} (${mp >= 1000 ? (mp / 1000).toFixed(1) + ' Gpx' : mp.toFixed(mp < 10 ? 1 : 0) + ' Mpx'})` : size;
  };

  /** A URL safe to link to: http or https only, else null. */
  const safeLink = (link) => {
    if (typeof link !== 'string' || link === '') return null;
    try {
      const url = new URL(link, document.baseURI);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  };

  /** Reads an error response's `{error, code}` body (or makes one up). */
  const errorOf = (status, text) => {
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === 'string') return { status, code: String(body.code || ''), message: body.error };
    } catch { /* not JSON */ }
    return { status, code: '', message: `the server answered ${status}` };
  };

  const getJson = async (url) => {
    const response = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    const text = await response.text();
    if (!response.ok) throw errorOf(response.status, text);
    return JSON.parse(text);
  };

  // ---------------------------------------------------------------------------------------
  // State

  const state = {
    images: [],            // the last list from the server
    items: new Map(),      // id -> { li, button, thumb, img, name, facts, status }
    current: null,         // { id, meta, layer, bounds, session } of the image shown
    filter: '',
    listTimer: 0,
  };

  // ---------------------------------------------------------------------------------------
  // The map

  const map = L.map('map', {
    crs: L.CRS.Simple,
    center: [0, 0],
    zoom: 0,
    minZoom: -4,
    maxZoom: 0,
    zoomSnap: 0.25,
    zoomDelta: 0.5,
    wheelPxPerZoomLevel: 90,
    inertia: true,
    keyboard: true,
    boxZoom: true,
    doubleClickZoom: true,
    zoomControl: false,
    attributionControl: false,
    maxBoundsViscosity: 0.9,
    fadeAnimation: true,
  });

  /** The CSS that hides the padding of a tile at the image's right or bottom edge. */
  const edgeClip = (meta, z, x, y) => {
    const scale = 2 ** (meta.maxZoom - z);
    const cw = Math.min(TILE, meta.width / scale - x * TILE);
    const ch = Math.min(TILE, meta.height / scale - y * TILE);
    if (cw >= TILE && ch >= TILE) return '';
    const pct = (v) => `${((1 - v / TILE) * 100).toFixed(3)}%`;
    return `inset(0 ${pct(cw)} ${pct(ch)} 0)`;
  };

  /** Tiles of one image; edge tiles are padded by the server, and clipped here. */
  const ImageTiles = L.TileLayer.extend({
    // Each tile overlaps its neighbours by one pixel (1/256 of stretch, invisible), so that no
    // hairline seam shows between tiles at fractional zooms, where Leaflet scales them.
    _initTile(tile) {
      L.TileLayer.prototype._initTile.call(this, tile);
      const size = this.getTileSize();
      tile.style.width = `${size.x + 1}px`;
      tile.style.height = `${size.y + 1}px`;
    },
    // Leaflet cancels tiles it no longer wants by pointing them at an empty image, which the
    // browser logs as failed (aborted) requests. A tile that is on its way is left to arrive
    // (into the HTTP cache, where zooming back finds it); only its element is dropped.
    _abortLoading() {},
    _removeTile(key) {
      return L.GridLayer.prototype._removeTile.call(this, key);
    },
    createTile(coords, done) {
      const tile = L.TileLayer.prototype.createTile.call(this, coords, done);
      const clip = edgeClip(this.options.imageMeta, coords.z, coords.x, coords.y);
      if (clip) tile.style.clipPath = clip;
      return tile;
    },
  });

  /** Full-resolution pixel coordinates of a map position. */
  const toPixel = (latlng) => {
    const p = map.project(latlng, state.current.meta.maxZoom);
    return { x: p.x, y: p.y };
  };
  const fromPixel = (x, y) => map.unproject([x, y], state.current.meta.maxZoom);

  const overzoomAllowed = () => $('overzoom').checked;

  const notice = (text) => {
    const node = $('notice');
    node.textContent = text || '';
    node.hidden = !text;
  };

  /** Shows an image: fetches its metadata, sets up the tile layer and the view. */
  async function openImage(id, view, how) {
    const previous = state.current;
    if (previous && previous.id === id) {
      if (view) applyView(view);
      return;
    }
    closeImage();
    const entry = state.images.find((image) => image.id === id);
    const current = { id, meta: null, layer: null, bounds: null, metaTimer: 0, session: newSession(id) };
    state.current = current;
    markSelected();
    $('title').textContent = entry ? entry.original_filename : id;
    document.title = `${entry ? entry.original_filename : id} · gigatile`;
    notice('Loading…');
    let meta;
    try {
      meta = await getJson(`${imageBase(id)}/meta`);
    } catch (e) {
      if (state.current !== current) return;
      notice(e.status === 404 ? 'This image is not on the server (any more).' : `Could not open this image: ${e.message}`);
      return;
    }
    if (state.current !== current) return;
    current.meta = meta;
    current.session.meta = meta;
    current.session.prefix = new URL(`${tilesBase(id, meta.signature)}/`, document.baseURI).href;
    const mz = meta.maxZoom;
    current.bounds = L.latLngBounds(map.unproject([0, meta.height], mz), map.unproject([meta.width, 0], mz));
    current.view = view;
    setAttribution(meta);
    writeHistory(how);
    showLayer(current);
  }

  /** Adds (or re-adds) the tile layer once some zoom level is servable, or says why not. */
  function showLayer(current) {
    const meta = current.meta;
    clearTimeout(current.metaTimer);
    if (meta.status === 'failed') {
      notice(`This image could not be prepared: ${meta.reason || 'unknown reason'}`);
      return;
    }
    if (meta.readyMaxZoom === null || meta.readyMaxZoom === undefined) {
      notice(`Preparing this image… ${Math.round((meta.progress || 0) * 100)} %`);
      current.metaTimer = setTimeout(() => refreshMeta(current), META_POLL_MS);
      return;
    }
    notice('');
    const native = meta.readyMaxZoom;
    const first = !current.layer;
    if (first) {
      current.layer = new ImageTiles(`${tilesBase(current.id, meta.signature)}/{z}/{x}/{y}.jpg`, {
        imageMeta: meta,
        tileSize: TILE,
        noWrap: true,
        bounds: current.bounds,
        minNativeZoom: 0,
        maxNativeZoom: native,
        minZoom: -4,
        maxZoom: meta.maxZoom + OVERZOOM,
        keepBuffer: 2,
        updateWhenZooming: false,
        className: 'image-tiles',
      });
      current.layer.on('tileerror', (e) => retryTile(e));
      setZoomLimits(current);
      setMinimap(current);
      if (current.view) applyView(current.view); else fitImage(false);
      // Only once the view is on the image: set earlier, its corrective pan would be
      // replayed after the view is set.
      map.setMaxBounds(current.bounds.pad(0.5));
      current.layer.addTo(map);
    } else if (current.layer.options.maxNativeZoom !== native) {
      // A deeper level finished building: let the layer ask for it.
      current.layer.options.maxNativeZoom = native;
      current.layer.redraw();
    }
    if (meta.status === 'building') {
      current.metaTimer = setTimeout(() => refreshMeta(current), META_POLL_MS);
    }
    updateReadouts();
  }

  async function refreshMeta(current) {
    if (state.current !== current) return;
    try {
      const meta = await getJson(`${imageBase(current.id)}/meta`);
      if (state.current !== current) return;
      current.meta = meta;
      current.session.meta = meta;
    } catch { /* try again next time */ }
    showLayer(current);
  }

  /** A tile that failed (a busy server's 503) is tried again once, a moment later. */
  function retryTile(event) {
    const tile = event.tile;
    if (tile.dataset.retried || !tile.src) return;
    tile.dataset.retried = '1';
    const url = `${tile.src.split('?')[0]}?retry=1`;
    setTimeout(() => { tile.src = url; }, 1500);
  }

  function setZoomLimits(current) {
    const meta = current.meta;
    const fit = map.getBoundsZoom(current.bounds, false);
    map.setMinZoom(Math.max(-4, Math.min(0, Math.floor(fit * 4) / 4 - 1)));
    map.setMaxZoom(meta.maxZoom + (overzoomAllowed() ? OVERZOOM : 0));
  }

  function fitImage(animate) {
    if (!state.current || !state.current.bounds) return;
    map.fitBounds(state.current.bounds, { animate, padding: [8, 8] });
  }

  function applyView(view) {
    if (!state.current || !state.current.meta) return;
    const { x, y, z } = view;
    if ([x, y, z].every(Number.isFinite)) {
      map.setView(fromPixel(x, y), Math.min(Math.max(z, map.getMinZoom()), map.getMaxZoom()), { animate: false });
    } else {
      fitImage(false);
    }
  }

  function closeImage() {
    const current = state.current;
    if (!current) return;
    clearTimeout(current.metaTimer);
    if (current.layer) map.removeLayer(current.layer);
    map.setMaxBounds(null);
    current.session.close();
    state.current = null;
    $('minimap').hidden = true;
    $('attribution').replaceChildren();
  }

  // ---------------------------------------------------------------------------------------
  // Download tracking: bytes the browser actually received for this image's tiles, from the
  // Resource Timing API (no extra request), and the image pixels those tiles carry.

  if (performance.setResourceTimingBufferSize) performance.setResourceTimingBufferSize(20000);
  performance.addEventListener?.('resourcetimingbufferfull', () => performance.clearResourceTimings());

  let session = null;

  function newSession(id) {
    const s = {
      id,
      prefix: null, // the absolute URL the image's tiles start with, once its metadata came
      meta: null,
      transferred: 0,
      requests: 0,
      tiles: new Map(), // "z/x/y" -> in-image pixels at that zoom
      close() { if (session === s) session = null; },
    };
    session = s;
    return s;
  }

  const tilePattern = /^(\d+)\/(\d+)\/(\d+)\.\w+$/;

  /** Image pixels inside tile (z, x, y): the tile clipped to the image's extent at zoom z. */
  function tilePixels(meta, z, x, y) {
    const scale = 2 ** (meta.maxZoom - z);
    const w = meta.width / scale;
    const h = meta.height / scale;
    const cw = Math.max(0, Math.min(TILE, w - x * TILE));
    const ch = Math.max(0, Math.min(TILE, h - y * TILE));
    return cw * ch;
  }

  function recordEntries(entries) {
    const s = session;
    if (!s) return;
    let changed = false;
    for (const entry of entries) {
      if (!s.prefix || !entry.name.startsWith(s.prefix)) continue;
      const match = tilePattern.exec(entry.name.slice(s.prefix.length).split(/[?#]/)[0]);
      if (!match) continue;
      s.requests += 1;
      s.transferred += entry.transferSize || 0;
      const key = `${match[1]}/${match[2]}/${match[3]}`;
      if (!s.tiles.has(key) && s.meta && (entry.responseStatus === undefined || entry.responseStatus === 200 || entry.responseStatus === 304)) {
        s.tiles.set(key, tilePixels(s.meta, +match[1], +match[2], +match[3]));
      }
      changed = true;
    }
    if (changed) scheduleReadouts();
  }

  if (typeof PerformanceObserver === 'function') {
    new PerformanceObserver((list) => recordEntries(list.getEntries())).observe({ type: 'resource', buffered: true });
  }

  function downloadStats() {
    const s = session;
    if (!s || !s.meta) return null;
    let pixels = 0;
    for (const p of s.tiles.values()) pixels += p;
    return {
      transferred: s.transferred,
      requests: s.requests,
      tiles: s.tiles.size,
      sourceBytes: s.meta.bytes,
      fraction: pixels / (s.meta.width * s.meta.height),
    };
  }

  // ---------------------------------------------------------------------------------------
  // Read-outs: zoom, pointer position, downloads, minimap.

  let readoutsQueued = false;
  function scheduleReadouts() {
    if (readoutsQueued) return;
    readoutsQueued = true;
    requestAnimationFrame(() => { readoutsQueued = false; updateReadouts(); });
  }

  function updateReadouts() {
    const current = state.current;
    if (!current || !current.meta) {
      $('zoom-level').textContent = '–';
      $('downloads').textContent = '–';
      return;
    }
    const mz = current.meta.maxZoom;
    const z = map.getZoom();
    const scale = 2 ** (z - mz) * 100;
    $('zoom-level').textContent = `z ${+z.toFixed(2)} / ${mz} · ${scale >= 10 ? Math.round(scale) : scale.toPrecision(2)} %`;
    const stats = downloadStats();
    if (stats) {
      const pct = stats.fraction * 100;
      $('downloads').textContent = `${formatBytes(stats.transferred)} transferred of ${formatBytes(stats.sourceBytes)} source · ${pct < 10 ? pct.toFixed(2) : pct.toFixed(1)} % of full-res pixels`;
      $('downloads').title = `${stats.tiles} distinct tiles, ${stats.requests} fetches for this image since it was opened. `
        + 'Bytes are as received over the network (from Resource Timing); tiles served from the browser cache count as 0. '
        + 'Full-res pixels: image pixels in the tiles fetched, at every zoom, ÷ the full-resolution pixel count (see About).';
    }
    updateMinimapView();
  }

  let moving = false;
  map.on('movestart zoomstart', () => { moving = true; });
  map.on('zoomend moveend', () => { moving = false; updateReadouts(); writeHistory('replace'); });
  map.on('move', updateMinimapView);

  map.on('mousemove', (e) => {
    if (!state.current || !state.current.meta) return;
    const p = toPixel(e.latlng);
    const inside = p.x >= 0 && p.y >= 0 && p.x < state.current.meta.width && p.y < state.current.meta.height;
    $('cursor').textContent = inside ? `x ${Math.floor(p.x)} · y ${Math.floor(p.y)}` : '–';
  });
  map.on('mouseout', () => { $('cursor').textContent = '–'; });
  map.on('click', (e) => {
    if (!state.current || !state.current.meta) return;
    const p = toPixel(e.latlng);
    const meta = state.current.meta;
    if (p.x < 0 || p.y < 0 || p.x >= meta.width || p.y >= meta.height) return;
    const button = $('clicked');
    button.textContent = `clicked x ${Math.floor(p.x)}, y ${Math.floor(p.y)} (copy)`;
    button.dataset.value = `${Math.floor(p.x)},${Math.floor(p.y)}`;
    button.disabled = false;
  });
  $('clicked').addEventListener('click', () => {
    const value = $('clicked').dataset.value;
    if (!value || !navigator.clipboard) return;
    navigator.clipboard.writeText(value).then(
      () => { $('clicked').textContent = `copied ${value}`; },
      () => { /* no clipboard permission: the position stays visible */ },
    );
  });

  // Minimap: the whole-image tile with a rectangle for the view; click or drag to move.
  const minimap = { scale: 0, w: 0, h: 0 };

  function setMinimap(current) {
    const meta = current.meta;
    const box = $('minimap');
    if (meta.status === 'failed') { box.hidden = true; return; }
    box.hidden = false;
    const inner = { w: box.clientWidth - 8, h: box.clientHeight - 8 };
    const w0 = meta.width / 2 ** meta.maxZoom;
    const h0 = meta.height / 2 ** meta.maxZoom;
    const scale = Math.min(inner.w / w0, inner.h / h0);
    Object.assign(minimap, { scale, w: w0 * scale, h: h0 * scale });
    const frame = $('minimap-frame');
    frame.style.width = `${Math.round(minimap.w)}px`;
    frame.style.height = `${Math.round(minimap.h)}px`;
    frame.style.marginTop = `${Math.floor((inner.h - minimap.h) / 2)}px`;
    const img = $('minimap-image');
    img.style.width = `${TILE * scale}px`;
    img.style.height = `${TILE * scale}px`;
    img.removeAttribute('src');
    if (meta.readyMaxZoom !== null && meta.readyMaxZoom !== undefined) img.src = tileUrl(current.id, meta.signature, 0, 0, 0);
  }

  function updateMinimapView() {
    const current = state.current;
    if (!current || !current.meta || $('minimap').hidden) return;
    const meta = current.meta;
    const b = map.getBounds();
    const a = toPixel(b.getNorthWest());
    const c = toPixel(b.getSouthEast());
    const k = minimap.w / meta.width;
    const clamp = (v, max) => Math.min(Math.max(v, 0), max);
    const left = clamp(a.x * k, minimap.w);
    const top = clamp(a.y * k, minimap.h);
    const view = $('minimap-view');
    view.style.left = `${left}px`;
    view.style.top = `${top}px`;
    view.style.width = `${clamp(c.x * k, minimap.w) - left}px`;
    view.style.height = `${clamp(c.y * k, minimap.h) - top}px`;
  }

  {
    const frame = $('minimap');
    let dragging = false;
    const moveTo = (event) => {
      const current = state.current;
      if (!current || !current.meta) return;
      const rect = $('minimap-frame').getBoundingClientRect();
      const k = current.meta.width / minimap.w;
      map.panTo(fromPixel((event.clientX - rect.left) * k, (event.clientY - rect.top) * k), { animate: !dragging });
    };
    frame.addEventListener('pointerdown', (e) => { dragging = true; frame.setPointerCapture(e.pointerId); moveTo(e); });
    frame.addEventListener('pointermove', (e) => { if (dragging) moveTo(e); });
    frame.addEventListener('pointerup', () => { dragging = false; });
    frame.addEventListener('pointercancel', () => { dragging = false; });
  }

  /** The image's copyright line, with a link only for http and https URLs. */
  function setAttribution(meta) {
    const box = $('attribution');
    const parts = [];
    const text = typeof meta.copyright_text === 'string' ? meta.copyright_text : '';
    const link = safeLink(meta.copyright_link);
    if (text || link) {
      if (link) {
        const a = el('a', '', text || link);
        a.href = link;
        a.rel = 'noopener noreferrer';
        a.target = '_blank';
        parts.push(a);
      } else {
        parts.push(el('span', '', text));
      }
      parts.push(document.createTextNode(' · '));
    }
    const leaflet = el('a', '', 'Leaflet');
    leaflet.href = 'https://leafletjs.com';
    leaflet.rel = 'noopener noreferrer';
    leaflet.target = '_blank';
    parts.push(leaflet);
    box.replaceChildren(...parts);
  }

  // ---------------------------------------------------------------------------------------
  // Deep links: #id=...&x=...&y=...&z=... (full-resolution pixel of the centre, zoom).

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const id = params.get('id');
    if (!id) return null;
    const num = (k) => (params.has(k) ? Number(params.get(k)) : NaN);
    return { id, view: { x: num('x'), y: num('y'), z: num('z') } };
  }

  function currentHash() {
    const current = state.current;
    if (!current) return '';
    const params = new URLSearchParams({ id: current.id });
    if (current.meta && current.layer) {
      const c = toPixel(map.getCenter());
      params.set('x', String(Math.round(c.x)));
      params.set('y', String(Math.round(c.y)));
      params.set('z', String(+map.getZoom().toFixed(2)));
    }
    return `#${params}`;
  }

  /** `push` starts a history entry (another image), `replace` updates it (a settled view). */
  function writeHistory(how) {
    if (!state.current || how === 'none') return;
    const hash = currentHash();
    if (hash === location.hash) return;
    if (how === 'push') history.pushState(null, '', hash);
    else history.replaceState(null, '', hash);
  }

  window.addEventListener('popstate', () => {
    const link = readHash();
    if (link) openImage(link.id, link.view, 'none');
  });

  // ---------------------------------------------------------------------------------------
  // The image list.

  function thumbnail(item, image) {
    const box = item.thumb;
    if (image.status !== 'ready' || item.img) return;
    const mz = Math.max(0, Math.ceil(Math.log2(Math.max(image.width, image.height) / TILE)));
    const w0 = image.width / 2 ** mz;
    const h0 = image.height / 2 ** mz;
    const bw = 64;
    const bh = 48;
    const scale = Math.min(bw / w0, bh / h0);
    const img = el('img');
    img.alt = '';
    img.loading = 'lazy';
    img.decoding = 'async';
    img.width = Math.round(TILE * scale);
    img.height = Math.round(TILE * scale);
    img.style.left = `${Math.round((bw - w0 * scale) / 2)}px`;
    img.style.top = `${Math.round((bh - h0 * scale) / 2)}px`;
    img.style.clipPath = edgeClip({ width: image.width, height: image.height, maxZoom: mz }, 0, 0, 0);
    img.src = tileUrl(image.id, image.signature, 0, 0, 0);
    item.img = img;
    box.append(img);
  }

  function renderItem(image) {
    let item = state.items.get(image.id);
    if (!item) {
      const li = el('li');
      const button = el('button', 'item');
      button.type = 'button';
      button.dataset.id = image.id;
      const thumb = el('span', 'thumb');
      const text = el('span', 'item-text');
      const name = el('span', 'item-name');
      const facts = el('span', 'item-facts');
      const status = el('span', 'item-status');
      text.append(name, facts, status);
      button.append(thumb, text);
      li.append(button);
      button.addEventListener('click', () => {
        if (drawerOpen()) {
          setDrawer(false);
          $('map').focus({ preventScroll: true });
        }
        openImage(image.id, null, 'push');
      });
      item = { li, button, thumb, name, facts, status, img: null, statusKey: '' };
      state.items.set(image.id, item);
    }
    item.name.textContent = image.original_filename || image.id;
    // An upload's stored name is internal: it is shown by the name it was uploaded under.
    item.button.title = image.id.startsWith('uploads/') ? image.original_filename : image.id;
    item.facts.textContent = `${formatPixels(image.width, image.height)} · ${formatBytes(image.bytes)} · ${String(image.format).toUpperCase()}`;
    const key = `${image.status}|${image.progress}|${image.reason || ''}`;
    if (key !== item.statusKey) {
      item.statusKey = key;
      item.status.className = `item-status ${image.status}`;
      if (image.status === 'building') {
        const bar = el('progress');
        bar.max = 1;
        bar.value = image.progress || 0;
        bar.setAttribute('aria-label', `Preparing ${image.original_filename}`);
        item.status.replaceChildren(bar, el('span', '', `preparing ${Math.round((image.progress || 0) * 100)} %`));
      } else if (image.status === 'failed') {
        item.status.replaceChildren(el('span', '', `failed: ${image.reason || 'unknown reason'}`));
        item.status.title = image.reason || '';
      } else {
        item.status.replaceChildren(el('span', '', 'ready'));
      }
    }
    item.button.setAttribute('aria-label', `${image.original_filename}, ${image.width} by ${image.height} pixels, ${image.status}`);
    thumbnail(item, image);
    return item;
  }

  function renderList() {
    const list = $('images');
    const wanted = [];
    const filter = state.filter.toLowerCase();
    const seen = new Set();
    for (const image of state.images) {
      seen.add(image.id);
      const item = renderItem(image);
      const name = `${image.original_filename} ${image.id}`.toLowerCase();
      if (!filter || name.includes(filter)) wanted.push(item.li);
    }
    for (const [id, item] of state.items) if (!seen.has(id)) { item.li.remove(); state.items.delete(id); }
    // Only touch the DOM when the order or membership changed (keeps focus and thumbnails).
    const now = [...list.children];
    if (now.length !== wanted.length || now.some((li, i) => li !== wanted[i])) list.replaceChildren(...wanted);
    $('count').textContent = `(${state.images.length})`;
    $('list-message').textContent = state.images.length === 0
      ? 'No images yet: put files in the data folder or upload one.'
      : wanted.length === 0 ? 'No image matches the filter.' : '';
    markSelected();
  }

  function markSelected() {
    for (const [id, item] of state.items) {
      if (state.current && state.current.id === id) item.button.setAttribute('aria-current', 'true');
      else item.button.removeAttribute('aria-current');
    }
  }

  async function loadList() {
    clearTimeout(state.listTimer);
    if (document.hidden) {
      // A background tab does not poll; it refreshes when shown again.
      state.listTimer = setTimeout(loadList, LIST_POLL_IDLE_MS);
      return state.images;
    }
    let busy = false;
    try {
      state.images = await getJson('api/images');
      renderList();
      busy = state.images.some((image) => image.status === 'building');
    } catch (e) {
      $('list-message').textContent = `Could not load the image list: ${e.message || e}`;
    }
    state.listTimer = setTimeout(loadList, busy ? LIST_POLL_BUSY_MS : LIST_POLL_IDLE_MS);
    return state.images;
  }

  document.addEventListener('visibilitychange', () => { if (!document.hidden) loadList(); });

  $('filter').addEventListener('input', (e) => { state.filter = e.target.value.trim(); renderList(); });

  // Arrow keys move between the list's buttons.
  $('images').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const buttons = [...$('images').querySelectorAll('button.item')];
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    const next = buttons[at + (e.key === 'ArrowDown' ? 1 : -1)];
    if (next) { next.focus(); e.preventDefault(); }
  });

  // ---------------------------------------------------------------------------------------
  // Upload: by form or drag and drop, with progress, the copyright fields, and a token when
  // the server asks for one (kept in sessionStorage: this tab only).

  const TOKEN_KEY = 'gigatile.uploadToken';
  let uploading = false;

  function uploadMessage(text, kind) {
    const node = $('upload-message');
    node.textContent = text;
    node.className = `message ${kind || ''}`;
  }

  function chosenFile() {
    const files = $('upload-file').files;
    return files && files.length ? files[0] : null;
  }

  $('upload-file').addEventListener('change', () => {
    const file = chosenFile();
    $('upload-file-name').textContent = file ? `${file.name} · ${formatBytes(file.size)}` : '';
    uploadMessage('');
  });

  $('upload').addEventListener('submit', (e) => {
    e.preventDefault();
    const file = chosenFile();
    if (!file) { uploadMessage('Choose a file first.', 'error'); return; }
    const link = $('upload-link').value.trim();
    if (link && !safeLink(link)) { uploadMessage('The link must start with http:// or https://.', 'error'); return; }
    startUpload(file);
  });

  function startUpload(file) {
    if (uploading) return;
    const form = new FormData();
    form.append('copyright_text', $('upload-copyright').value.trim());
    form.append('copyright_link', $('upload-link').value.trim());
    form.append('file', file, file.name);
    send(form, file.name);
  }

  function send(form, name) {
    uploading = true;
    $('upload-submit').disabled = true;
    const bar = $('upload-progress');
    bar.value = 0;
    uploadMessage(`Uploading ${name}…`);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', 'api/upload');
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; });
    const done = () => { uploading = false; $('upload-submit').disabled = false; };
    xhr.addEventListener('load', () => {
      done();
      if (xhr.status === 201) {
        bar.value = 1;
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch { /* keep {} */ }
        uploaded(body.id, body.name || name);
        return;
      }
      bar.value = 0;
      const error = errorOf(xhr.status, xhr.responseText);
      if (error.code === 'token_required' || error.code === 'token_invalid') {
        if (error.code === 'token_invalid') sessionStorage.removeItem(TOKEN_KEY);
        askToken(error.code === 'token_invalid' ? 'That token is not valid; try again.' : 'This server needs an upload token.')
          .then((ok) => { if (ok) send(form, name); else uploadMessage('Upload cancelled: no token.', 'error'); });
        return;
      }
      uploadMessage(describeUploadError(error), 'error');
    });
    xhr.addEventListener('error', () => { done(); bar.value = 0; uploadMessage('The upload failed: the connection was lost.', 'error'); });
    xhr.send(form);
  }

  function describeUploadError(error) {
    switch (error.code) {
      case 'too_large': return `Too large: ${error.message}`;
      case 'corrupt_image':
      case 'unsupported_image': return `Not an image gigatile can read (TIFF, JPEG, PNG or WebP): ${error.message}`;
      case 'uploads_disabled': return 'Uploads are off: this server takes them from its own machine only, unless it sets an upload token.';
      case 'malformed_body':
      case 'malformed_multipart':
      case 'bad_request': return `The upload was refused: ${error.message}`;
      default: return `The upload failed (${error.status}): ${error.message}`;
    }
  }

  function askToken(message) {
    const dialog = $('token');
    $('token-message').textContent = message;
    $('token-input').value = '';
    dialog.showModal();
    return new Promise((resolve) => {
      const finish = (ok) => {
        dialog.removeEventListener('close', onClose);
        resolve(ok);
      };
      const onClose = () => {
        const value = $('token-input').value.trim();
        if (dialog.returnValue === 'ok' && value) {
          sessionStorage.setItem(TOKEN_KEY, value);
          finish(true);
        } else {
          finish(false);
        }
      };
      dialog.returnValue = '';
      dialog.addEventListener('close', onClose);
    });
  }
  $('token-cancel').addEventListener('click', () => $('token').close(''));

  /** After a 201: wait until the new image can be shown, then open it. */
  async function uploaded(id, name) {
    if (!id) { uploadMessage(`Uploaded ${name}.`, 'ok'); loadList(); return; }
    $('upload').reset();
    $('upload-file-name').textContent = '';
    uploadMessage(`Uploaded ${name}; preparing it…`, 'ok');
    await loadList();
    for (;;) {
      let meta;
      try { meta = await getJson(`${imageBase(id)}/meta`); } catch (e) {
        uploadMessage(`Uploaded ${name}, but it could not be opened: ${e.message}`, 'error');
        return;
      }
      if (meta.status === 'failed') {
        uploadMessage(`Uploaded ${name}, but it could not be prepared: ${meta.reason || 'unknown reason'}`, 'error');
        loadList();
        return;
      }
      if (meta.readyMaxZoom !== null && meta.readyMaxZoom !== undefined) break;
      uploadMessage(`Uploaded ${name}; preparing it… ${Math.round((meta.progress || 0) * 100)} %`, 'ok');
      await new Promise((r) => setTimeout(r, 700));
    }
    await loadList();
    uploadMessage(`Uploaded ${name}.`, 'ok');
    openImage(id, null, 'push');
  }

  // Drag and drop anywhere on the page.
  {
    let depth = 0;
    const overlay = $('drop-overlay');
    const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
    window.addEventListener('dragenter', (e) => { if (!hasFiles(e)) return; depth += 1; overlay.hidden = false; e.preventDefault(); });
    window.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
    window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
    window.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      overlay.hidden = true;
      const file = e.dataTransfer.files[0];
      if (!file) return;
      $('upload-file-name').textContent = `${file.name} · ${formatBytes(file.size)}`;
      startUpload(file);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Toolbar, drawer, about.

  $('zoom-in').addEventListener('click', () => map.zoomIn());
  $('zoom-out').addEventListener('click', () => map.zoomOut());
  $('fit').addEventListener('click', () => fitImage(true));
  $('overzoom').addEventListener('change', () => {
    try { localStorage.setItem('gigatile.overzoom', overzoomAllowed() ? '1' : '0'); } catch { /* private mode */ }
    if (state.current && state.current.meta) setZoomLimits(state.current);
  });
  try { if (localStorage.getItem('gigatile.overzoom') === '0') $('overzoom').checked = false; } catch { /* private mode */ }

  const stage = $('stage');
  if (!document.fullscreenEnabled) $('fullscreen').hidden = true;
  $('fullscreen').addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else stage.requestFullscreen().catch(() => {});
  });
  document.addEventListener('fullscreenchange', () => {
    const on = document.fullscreenElement === stage;
    $('fullscreen').setAttribute('aria-pressed', String(on));
    $('fullscreen').setAttribute('aria-label', on ? 'Leave full screen' : 'Full screen');
    map.invalidateSize();
  });

  // On narrow screens the sidebar is a drawer over the map; closed, it is inert (no focus).
  const narrow = window.matchMedia('(max-width: 720px)');
  function drawerOpen() { return document.body.classList.contains('drawer-open'); }
  function setDrawer(open) {
    document.body.classList.toggle('drawer-open', open);
    $('menu').setAttribute('aria-expanded', String(open));
    $('sidebar').inert = narrow.matches && !open;
  }
  $('menu').addEventListener('click', () => {
    setDrawer(!drawerOpen());
    if (drawerOpen()) $('filter').focus({ preventScroll: true });
  });
  narrow.addEventListener('change', () => setDrawer(false));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && drawerOpen()) { setDrawer(false); $('menu').focus(); }
  });
  setDrawer(false);
  $('about-open').addEventListener('click', () => $('about').showModal());

  new ResizeObserver(() => {
    map.invalidateSize({ pan: false });
    if (state.current && state.current.meta) { setMinimap(state.current); updateMinimapView(); }
  }).observe($('map'));

  // A small read-only handle for tests and the curious: the shown image and the counters.
  window.gigatile = Object.freeze({
    view() {
      const current = state.current;
      if (!current || !current.meta) return null;
      const b = map.getBounds();
      const nw = toPixel(b.getNorthWest());
      const se = toPixel(b.getSouthEast());
      const origin = map.latLngToContainerPoint(fromPixel(0, 0));
      const end = map.latLngToContainerPoint(fromPixel(current.meta.width, current.meta.height));
      return {
        id: current.id,
        zoom: map.getZoom(),
        maxZoom: current.meta.maxZoom,
        center: toPixel(map.getCenter()),
        visible: { x0: nw.x, y0: nw.y, x1: se.x, y1: se.y },
        imageOnScreen: { left: origin.x, top: origin.y, right: end.x, bottom: end.y },
        moving,
        tilesLoading: current.layer ? current.layer.isLoading() : true,
      };
    },
    downloads: () => downloadStats(),
  });

  // ---------------------------------------------------------------------------------------
  // Start: the image in the link, else the first one that can be shown.

  (async () => {
    const images = await loadList();
    const link = readHash();
    if (link) {
      openImage(link.id, link.view, 'replace');
      return;
    }
    const first = images.find((image) => image.status === 'ready') || images.find((image) => image.status === 'building');
    if (first) openImage(first.id, null, 'replace');
    else notice('No images yet: put files in the data folder or upload one.');
  })();
})();
