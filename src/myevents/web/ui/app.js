// The MyEvents web front end: a plain ES module, no build step, no dependencies.
// It calls the event service (this page's origin) and the booking service (its URL from /ui/config.json).

const TOKEN_KEY = "myevents.token";
const main = document.getElementById("main");
const statusBox = document.getElementById("status");
let bookingUrl = "";
let renderCount = 0;

// ---- DOM helpers (text goes in as text, never as markup) ----

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function setStatus(text, kind = "info") {
  statusBox.textContent = text;
  statusBox.dataset.kind = kind;
}

function problemBox(err) {
  return h("p", { class: "problem", role: "alert" }, err.message);
}

// ---- sign-in: a token pasted by the user, decoded here for display only ----

function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

function claims() {
  const t = token();
  if (!t) return null;
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(part + "=".repeat((4 - (part.length % 4)) % 4));
    const c = JSON.parse(json);
    return typeof c.sub === "string" ? c : null;
  } catch {
    return null;
  }
}

function isOrganizer() {
  const c = claims();
  return c !== null && c.role === "organizer";
}

function updateWho() {
  const c = claims();
  const who = document.getElementById("who");
  who.textContent = c ? `${c.sub} (${c.role})` : "Sign in";
  who.setAttribute("aria-label", c ? `Signed in as ${c.sub}, ${c.role}; change` : "Sign in");
  for (const item of document.querySelectorAll("[data-role=organizer]")) item.hidden = !isOrganizer();
}

// ---- HTTP ----

class Problem extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(base, method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(base + path, init);
  } catch {
    throw new Problem(0, `cannot reach ${base || "the event service"}: is it running?`);
  }
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    const detail = data && (data.detail || data.title);
    throw new Problem(resp.status, detail || `${resp.status} ${resp.statusText}`);
  }
  return data;
}

const events = (method, path, body) => api("", method, path, body);
const booking = (method, path, body) => api(bookingUrl, method, path, body);

// ---- formatting ----

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function toInput(seconds) {
  const d = new Date(seconds * 1000);
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function fromInput(value) {
  return Math.floor(new Date(value).getTime() / 1000);
}

function field(label, input) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

function needSignIn(what) {
  return h(
    "p",
    { class: "notice" },
    `Sign in to ${what}: `,
    h("a", { href: "#/signin" }, "paste a token"),
    ".",
  );
}

// ---- pages ----

async function seatsOf(id) {
  try {
    return await booking("GET", `/events/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

function seatsText(copy) {
  if (copy === null || copy.Capacity === null) return "not open for booking yet";
  if (copy.Cancelled) return "cancelled";
  return copy.SeatsLeft === 0 ? "sold out" : `${copy.SeatsLeft} of ${copy.Capacity} left`;
}

async function eventList() {
  const list = await events("GET", "/events");
  const live = list.filter((e) => !e.Cancelled);
  if (live.length === 0) {
    return [h("h1", {}, "Events"), h("p", {}, "No events yet.")];
  }
  const copies = await Promise.all(live.map((e) => seatsOf(e.ID).catch(() => null)));
  const items = live.map((e, i) => {
    const copy = copies[i];
    const open = copy !== null && copy.Capacity !== null && copy.SeatsLeft > 0 && !copy.Cancelled;
    return h(
      "li",
      { class: "card", "data-event": e.ID },
      h("h2", {}, h("a", { href: `#/event/${e.ID}` }, e.Name)),
      h(
        "dl",
        {},
        h("dt", {}, "Where"),
        h("dd", {}, e.Location.Name || "unknown location"),
        h("dt", {}, "When"),
        h("dd", {}, `${when(e.StartDate)} – ${when(e.EndDate)}`),
        h("dt", {}, "Seats"),
        h("dd", { class: "seats" }, seatsText(copy)),
      ),
      open
        ? h("a", { class: "button", href: `#/event/${e.ID}`, "aria-label": `Book now: ${e.Name}` }, "Book now")
        : null,
      isOrganizer() ? h("a", { class: "secondary", href: `#/events/${e.ID}/edit` }, "Edit") : null,
    );
  });
  return [h("h1", {}, "Events"), h("ul", { class: "cards" }, items)];
}

async function eventPage(id) {
  const e = await events("GET", `/events/${encodeURIComponent(id)}`);
  const copy = await seatsOf(id);
  const parts = [
    h("h1", {}, e.Name),
    h(
      "dl",
      {},
      h("dt", {}, "Where"),
      h("dd", {}, [e.Location.Name, e.Location.Address, e.Location.Country].filter(Boolean).join(", ")),
      h("dt", {}, "When"),
      h("dd", {}, `${when(e.StartDate)} – ${when(e.EndDate)}`),
      h("dt", {}, "Seats"),
      h("dd", { class: "seats", id: "seats" }, seatsText(copy)),
    ),
  ];
  if (e.Cancelled || (copy && copy.Cancelled)) {
    parts.push(h("p", { class: "notice" }, "This event is cancelled."));
  } else if (copy === null || copy.Capacity === null) {
    parts.push(
      h("p", { class: "notice" }, "Booking opens as soon as the booking service has heard of this event."),
      h("button", { type: "button", onclick: () => render() }, "Check again"),
    );
  } else if (copy.SeatsLeft === 0) {
    parts.push(h("p", { class: "notice soldout" }, "Sold out."));
  } else if (!claims()) {
    parts.push(needSignIn("book"));
  } else {
    parts.push(bookingForm(e, copy));
  }
  return parts;
}

function bookingForm(e, copy) {
  const seats = h("input", { type: "number", name: "seats", min: 1, max: copy.SeatsLeft, value: 1, required: true });
  const button = h("button", { type: "submit" }, "Book");
  const result = h("div", { class: "result", "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "form",
      "aria-label": "Book seats",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const n = Number(seats.value);
        button.disabled = true;
        setStatus("Saving your booking…", "busy");
        result.replaceChildren();
        try {
          const b = await booking("POST", `/events/${encodeURIComponent(e.ID)}/bookings`, { Seats: n });
          setStatus(`Booked ${b.Seats} seat${b.Seats === 1 ? "" : "s"} for ${e.Name}.`, "done");
          const now = await seatsOf(e.ID);
          document.getElementById("seats").textContent = seatsText(now);
          result.replaceChildren(
            h("p", { class: "done" }, `Done: booking ${b.ID}. `, h("a", { href: "#/bookings" }, "See my bookings")),
          );
          if (now && now.SeatsLeft > 0) {
            seats.max = now.SeatsLeft;
            seats.value = Math.min(n, now.SeatsLeft);
            button.disabled = false;
          } else {
            form.replaceWith(h("p", { class: "notice soldout" }, "Sold out."), result);
          }
        } catch (err) {
          setStatus("The booking failed.", "error");
          result.replaceChildren(problemBox(err));
          button.disabled = false;
        }
      },
    },
    field(`Seats (1 to ${copy.SeatsLeft})`, seats),
    button,
  );
  return h("section", { "aria-label": "Booking" }, form, result);
}

async function myBookings() {
  const c = claims();
  if (!c) return [h("h1", {}, "My bookings"), needSignIn("see your bookings")];
  const [list, all] = await Promise.all([
    booking("GET", `/users/${encodeURIComponent(c.sub)}/bookings`),
    events("GET", "/events"),
  ]);
  const names = Object.fromEntries(all.map((e) => [e.ID, e.Name]));
  if (list.length === 0) return [h("h1", {}, "My bookings"), h("p", {}, "No bookings yet.")];
  const rows = list.map((b) => {
    const cancel = h("button", { type: "button", class: "danger" }, "Cancel");
    const state = h("td", {}, b.Cancelled ? "cancelled" : "booked");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      setStatus("Cancelling…", "busy");
      try {
        await booking("DELETE", `/bookings/${encodeURIComponent(b.ID)}`);
        state.textContent = "cancelled";
        cancel.remove();
        setStatus(`Cancelled the booking of ${b.Seats} seat${b.Seats === 1 ? "" : "s"}.`, "done");
      } catch (err) {
        cancel.disabled = false;
        setStatus(`The cancellation failed: ${err.message}`, "error");
      }
    });
    return h(
      "tr",
      { "data-booking": b.ID },
      h("td", {}, h("a", { href: `#/event/${b.EventID}` }, names[b.EventID] || b.EventID)),
      h("td", {}, String(b.Seats)),
      h("td", {}, when(b.Date)),
      state,
      h("td", {}, b.Cancelled ? "" : cancel),
    );
  });
  return [
    h("h1", {}, "My bookings"),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ["Event", "Seats", "Booked on", "State", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows),
      ),
    ),
  ];
}

function signIn() {
  const input = h("textarea", { name: "token", rows: 3, autocomplete: "off", spellcheck: "false" });
  input.value = token();
  const result = h("div", { "aria-live": "polite" });
  const c = claims();
  return [
    h("h1", {}, "Sign in"),
    c ? h("p", {}, `Signed in as ${c.sub} (${c.role}).`) : h("p", {}, "Not signed in."),
    h(
      "p",
      {},
      "Get a token on the machine running the services: ",
      h("code", {}, "myevents token user ann"),
      " (a user) or ",
      h("code", {}, "myevents token organizer"),
      ", and paste it here. It is kept in this browser only.",
    ),
    h(
      "form",
      {
        class: "form",
        "aria-label": "Sign in",
        onsubmit: (ev) => {
          ev.preventDefault();
          const value = input.value.trim();
          localStorage.setItem(TOKEN_KEY, value);
          if (!claims()) {
            localStorage.removeItem(TOKEN_KEY);
            result.replaceChildren(problemBox(new Error("that is not a token: paste the whole output of myevents token")));
            updateWho();
            return;
          }
          updateWho();
          setStatus(`Signed in as ${claims().sub}.`, "done");
          location.hash = "#/";
        },
      },
      field("Token", input),
      h("button", { type: "submit" }, "Sign in"),
      " ",
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: () => {
            localStorage.removeItem(TOKEN_KEY);
            updateWho();
            setStatus("Signed out.", "done");
            render();
          },
        },
        "Sign out",
      ),
    ),
    result,
  ];
}

// ---- organizer pages ----

function organizerOnly(title) {
  return [
    h("h1", {}, title),
    h("p", { class: "notice" }, "Only an organizer may do this: ", h("a", { href: "#/signin" }, "sign in"), " with ", h("code", {}, "myevents token organizer"), "."),
  ];
}

function hallRow(hall = { name: "", location: "", capacity: 1 }) {
  const row = h("fieldset", { class: "hall" }, h("legend", {}, "Hall"));
  const name = h("input", { name: "hall-name", required: true, value: hall.name });
  const where = h("input", { name: "hall-location", value: hall.location });
  const cap = h("input", { name: "hall-capacity", type: "number", min: 1, required: true, value: hall.capacity });
  const uid = Math.random().toString(36).slice(2);
  name.id = `hn-${uid}`;
  where.id = `hl-${uid}`;
  cap.id = `hc-${uid}`;
  row.append(
    field("Hall name", name),
    field("Where in the building", where),
    field("Capacity", cap),
    h("button", { type: "button", class: "secondary", onclick: () => row.remove() }, "Remove hall"),
  );
  return row;
}

async function locationsPage() {
  if (!isOrganizer()) return organizerOnly("Locations");
  const list = await events("GET", "/locations");
  const items = list
    .filter((l) => !l.Cancelled)
    .map((l) =>
      h(
        "li",
        {},
        h("a", { href: `#/locations/${l.ID}` }, l.Name),
        ` — ${l.Halls.map((x) => `${x.name} (${x.capacity})`).join(", ") || "no halls"}`,
      ),
    );
  return [
    h("h1", {}, "Locations"),
    items.length ? h("ul", {}, items) : h("p", {}, "No locations yet."),
    h("p", {}, h("a", { class: "button", href: "#/locations/new" }, "New location")),
  ];
}

async function locationForm(id) {
  if (!isOrganizer()) return organizerOnly("Location");
  const loc = id
    ? await events("GET", `/locations/${encodeURIComponent(id)}`)
    : { Name: "", Address: "", Country: "", OpenTime: 0, CloseTime: 0, Halls: [] };
  const name = h("input", { name: "name", required: true, value: loc.Name });
  const address = h("input", { name: "address", value: loc.Address });
  const country = h("input", { name: "country", value: loc.Country });
  const open = h("input", { name: "open", type: "number", min: 0, max: 24, value: loc.OpenTime });
  const close = h("input", { name: "close", type: "number", min: 0, max: 24, value: loc.CloseTime });
  const halls = h("div", { class: "halls" }, (loc.Halls.length ? loc.Halls : [undefined]).map((x) => hallRow(x)));
  const save = h("button", { type: "submit" }, id ? "Save location" : "Create location");
  const result = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "form",
      "aria-label": id ? "Edit location" : "New location",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {
          Name: name.value.trim(),
          Address: address.value,
          Country: country.value,
          OpenTime: Number(open.value),
          CloseTime: Number(close.value),
          Halls: [...halls.querySelectorAll(".hall")].map((row) => ({
            name: row.querySelector("[name=hall-name]").value.trim(),
            location: row.querySelector("[name=hall-location]").value,
            capacity: Number(row.querySelector("[name=hall-capacity]").value),
          })),
        };
        save.disabled = true;
        setStatus("Saving the location…", "busy");
        result.replaceChildren();
        try {
          const saved = id
            ? await events("PATCH", `/locations/${encodeURIComponent(id)}`, body)
            : await events("POST", "/locations", body);
          setStatus(`Saved the location ${saved.Name}.`, "done");
          location.hash = "#/locations";
        } catch (err) {
          setStatus("The location was not saved.", "error");
          result.replaceChildren(problemBox(err));
          save.disabled = false;
        }
      },
    },
    field("Name", name),
    field("Address", address),
    field("Country", country),
    field("Opens at (hour)", open),
    field("Closes at (hour)", close),
    h("h2", {}, "Halls"),
    halls,
    h("button", { type: "button", class: "secondary", onclick: () => halls.append(hallRow()) }, "Add a hall"),
    save,
  );
  const parts = [h("h1", {}, id ? `Edit ${loc.Name}` : "New location"), form, result];
  if (id && !loc.Cancelled) parts.push(cancelLocation(id, loc.Name, result));
  return parts;
}

// Cancelling a location takes two clicks: the first asks, the second does it (no browser dialog).
function cancelLocation(id, name, result) {
  const button = h("button", { type: "button", class: "danger" }, "Cancel location");
  let asked = false;
  button.addEventListener("click", async () => {
    if (!asked) {
      asked = true;
      button.textContent = `Yes, cancel ${name}`;
      setStatus(`Cancelling ${name} cannot be undone: click again to confirm.`, "info");
      return;
    }
    button.disabled = true;
    setStatus("Cancelling the location…", "busy");
    try {
      await events("DELETE", `/locations/${encodeURIComponent(id)}`);
      setStatus(`Cancelled the location ${name}.`, "done");
      location.hash = "#/locations";
    } catch (err) {
      setStatus("The location was not cancelled.", "error");
      result.replaceChildren(problemBox(err));
      button.disabled = false;
    }
  });
  return h("p", {}, button);
}

async function eventForm(id) {
  if (!isOrganizer()) return organizerOnly("Event");
  const now = Math.floor(Date.now() / 3600000) * 3600 + 86400;
  const [e, locations] = await Promise.all([
    id ? events("GET", `/events/${encodeURIComponent(id)}`) : null,
    events("GET", "/locations"),
  ]);
  const ev0 = e || { Name: "", StartDate: now, EndDate: now + 7200, Duration: 120, Location: { ID: "" } };
  const name = h("input", { name: "name", required: true, value: ev0.Name });
  const start = h("input", { name: "start", type: "datetime-local", required: true, value: toInput(ev0.StartDate) });
  const end = h("input", { name: "end", type: "datetime-local", required: true, value: toInput(ev0.EndDate) });
  const duration = h("input", { name: "duration", type: "number", min: 0, value: ev0.Duration });
  const place = h(
    "select",
    { name: "location", required: true, disabled: Boolean(id) },
    h("option", { value: "" }, "Choose a location"),
    locations
      .filter((l) => !l.Cancelled || l.ID === ev0.Location.ID)
      .map((l) => h("option", { value: l.ID, selected: l.ID === ev0.Location.ID }, l.Name)),
  );
  const save = h("button", { type: "submit" }, id ? "Save event" : "Create event");
  const result = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "form",
      "aria-label": id ? "Edit event" : "New event",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {
          Name: name.value.trim(),
          StartDate: fromInput(start.value),
          EndDate: fromInput(end.value),
          Duration: Number(duration.value),
        };
        save.disabled = true;
        setStatus("Saving the event…", "busy");
        result.replaceChildren();
        try {
          const saved = id
            ? await events("PATCH", `/events/${encodeURIComponent(id)}`, body)
            : await events("POST", "/events", { ...body, Location: { ID: place.value } });
          setStatus(`Saved the event ${saved.Name}.`, "done");
          location.hash = `#/event/${saved.ID}`;
        } catch (err) {
          setStatus("The event was not saved.", "error");
          result.replaceChildren(problemBox(err));
          save.disabled = false;
        }
      },
    },
    field("Name", name),
    field("Location", place),
    field("Starts", start),
    field("Ends", end),
    field("Duration (minutes)", duration),
    save,
  );
  const parts = [h("h1", {}, id ? `Edit ${ev0.Name}` : "New event"), form, result];
  if (id && !ev0.Cancelled) {
    parts.push(
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            if (!confirm(`Cancel the event ${ev0.Name}?`)) return;
            try {
              await events("DELETE", `/events/${encodeURIComponent(id)}`);
              setStatus(`Cancelled the event ${ev0.Name}.`, "done");
              location.hash = "#/";
            } catch (err) {
              result.replaceChildren(problemBox(err));
            }
          },
        },
        "Cancel this event",
      ),
    );
  }
  return parts;
}

// ---- routing ----

const routes = [
  [/^\/?$/, () => eventList()],
  [/^\/event\/([^/]+)$/, (m) => eventPage(decodeURIComponent(m[1]))],
  [/^\/bookings$/, () => myBookings()],
  [/^\/signin$/, () => signIn()],
  [/^\/locations$/, () => locationsPage()],
  [/^\/locations\/new$/, () => locationForm(null)],
  [/^\/locations\/([^/]+)$/, (m) => locationForm(decodeURIComponent(m[1]))],
  [/^\/events\/new$/, () => eventForm(null)],
  [/^\/events\/([^/]+)\/edit$/, (m) => eventForm(decodeURIComponent(m[1]))],
];

async function render() {
  const mine = ++renderCount;
  const path = location.hash.replace(/^#/, "") || "/";
  main.setAttribute("aria-busy", "true");
  show(h("p", { class: "loading" }, "Loading…"));
  let nodes;
  try {
    const route = routes.find(([re]) => re.test(path));
    nodes = route ? await route[1](path.match(route[0])) : [h("h1", {}, "Not found"), h("p", {}, "No such page.")];
  } catch (err) {
    nodes = [h("h1", {}, "Something went wrong"), problemBox(err)];
  }
  if (mine !== renderCount) return; // a later navigation won
  show(...[nodes].flat());
  main.removeAttribute("aria-busy");
  document.body.dataset.page = path.split("/")[1] || "events";
}

async function start() {
  updateWho();
  try {
    const cfg = await events("GET", "/ui/config.json");
    bookingUrl = cfg.bookingUrl.replace(/\/$/, "");
  } catch (err) {
    show(h("h1", {}, "Cannot start"), problemBox(err));
    return;
  }
  window.addEventListener("hashchange", () => {
    render();
    main.focus({ preventScroll: true });
  });
  await render();
}

start();
