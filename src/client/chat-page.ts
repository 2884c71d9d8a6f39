import { checkDisplayName } from "../protocol/names";
import { ChatClient } from "./chat-client";
import { clientId, rememberName, storedName } from "./identity";
import { pageToken } from "./page/account-token";
import { roomFromPath } from "./page/address";
import { compose } from "./page/composer";
import { $ } from "./page/dom";
import { notice } from "./page/message-list";
import { RoomList } from "./page/room-list";
import { RoomView } from "./page/room-view";

function join(room: string, name: string | null, token: string | null, everyRoom = false): void {
  if (name !== null) rememberName(name);
  $("name-form").hidden = true;
  const url = new URL(`/rooms/${encodeURIComponent(room)}`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const chat = new ChatClient({ url: url.href, clientId: clientId(), ...(name !== null && { name }), ...(token !== null && { token }) });
  const view = new RoomView(chat);
  if (token !== null && everyRoom) new RoomList(chat, token, room);
  compose(
    (text) => view.send(text),
    (active) => view.typing(active),
  );
}

function askForName(room: string, problem: string | null): void {
  const form = $<HTMLFormElement>("name-form");
  const input = $<HTMLInputElement>("name-input");
  const error = $<HTMLParagraphElement>("name-error");
  form.hidden = false;
  error.hidden = problem === null;
  error.textContent = problem ?? "";
  input.focus();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const checked = checkDisplayName(input.value);
    if (!checked.ok) {
      error.hidden = false;
      error.textContent = `That name can't be used: ${checked.message}.`;
      return;
    }
    join(room, checked.name, null);
  });
}

const room = roomFromPath();
if (room === null) {
  $("room-name").textContent = "No such room";
  notice("This address does not name a room. Go back to the lobby to pick one.", "warning");
} else {
  $("room-name").textContent = room;
  document.title = `${room} · Edge chat`;
  const query = new URLSearchParams(location.search);
  const { token, everyRoom, expired } = pageToken(query.get("token"));
  if (expired)
    notice("Your token for every room has expired, so this tab no longer lists your rooms. Open a link with a new one to see them again.", "warning");
  const given = query.get("name") ?? storedName();
  const checked = given === null ? null : checkDisplayName(given);
  // A token names its holder, so a link with one needs nothing more.
  if (token !== null) join(room, null, token, everyRoom);
  else if (checked?.ok) join(room, checked.name, null);
  else askForName(room, checked && !checked.ok ? `That name can't be used: ${checked.message}.` : null);
}
