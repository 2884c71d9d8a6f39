import { checkDisplayName, isRoomName } from "../protocol/names";
import { rememberName, storedName } from "./identity";

const form = document.getElementById("join") as HTMLFormElement;
const nameInput = document.getElementById("name") as HTMLInputElement;
const roomInput = document.getElementById("room") as HTMLInputElement;
const createButton = document.getElementById("create") as HTMLButtonElement;
const errorLine = document.getElementById("lobby-error") as HTMLParagraphElement;

nameInput.value = storedName() ?? "";
(nameInput.value ? roomInput : nameInput).focus();

function fail(message: string, field?: HTMLInputElement): void {
  errorLine.hidden = false;
  errorLine.textContent = message;
  field?.setAttribute("aria-invalid", "true");
  field?.focus();
}

/** The checked name, remembered for next time, or null after saying what is wrong. */
function chosenName(): string | null {
  nameInput.removeAttribute("aria-invalid");
  const checked = checkDisplayName(nameInput.value);
  if (!checked.ok) {
    fail(`That name can't be used: ${checked.message}.`, nameInput);
    return null;
  }
  rememberName(checked.name);
  return checked.name;
}

function enter(roomUrl: string, name: string): void {
  const url = new URL(roomUrl, location.href);
  url.searchParams.set("name", name);
  location.assign(url);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = chosenName();
  if (name === null) return;
  const room = roomInput.value.trim();
  roomInput.removeAttribute("aria-invalid");
  if (!isRoomName(room)) {
    fail("Room names are 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit.", roomInput);
    return;
  }
  enter(`/rooms/${encodeURIComponent(room)}`, name);
});

createButton.addEventListener("click", async () => {
  const name = chosenName();
  if (name === null) return;
  createButton.disabled = true;
  try {
    const response = await fetch("/api/rooms", { method: "POST" });
    const body = (await response.json()) as { url?: string; message?: string };
    if (!response.ok || body.url === undefined) throw new Error(body.message ?? `the server answered ${response.status}`);
    enter(body.url, name);
  } catch (error) {
    fail(`Could not create a room: ${error instanceof Error ? error.message : String(error)}.`);
    createButton.disabled = false;
  }
});
