// The REST API as the console uses it: signed in by the HttpOnly cookie that POST /api/login
// sets, every unsafe request carrying the CSRF header the server asks of cookie requests; and
// errors turned into sentences, with the code kept as a detail.

const CSRF_HEADER = "X-Botical-CSRF";

export class ApiError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.details = error.details;
  }
}

export async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") init.headers[CSRF_HEADER] = "1";
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError({ code: "CONNECTION_FAILED", message: "The server cannot be reached" });
  }
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new ApiError(parsed?.error ?? { code: `HTTP_${response.status}`, message: "" });
  }
  return parsed;
}

// The URL `botical serve` prints carries ?token=: trade it for the cookie at once, and take it
// out of the address bar and the history. Resolves with /api/me, or rejects (UNAUTHORIZED).
export async function signIn() {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  if (token !== null) {
    params.delete("token");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
    await api("POST", "/api/login", { token });
  }
  return api("GET", "/api/me");
}

export function signOut() {
  return api("POST", "/api/logout");
}

// What each code means for the person at the console; codes whose server message already says
// what happened (CONFLICT, NOT_FOUND, ...) keep that message.
const SENTENCES = {
  UNAUTHORIZED:
    "You are not signed in, or your sign-in expired: open the URL botical serve printed.",
  RATE_LIMITED: "Too many requests at once: wait a moment and try again.",
  PAYLOAD_TOO_LARGE: "That is too large to send.",
  TIMEOUT: "The server took too long to answer.",
  INTERNAL_ERROR: "Something went wrong on the server (its log has the details).",
  CONNECTION_FAILED: "The server cannot be reached.",
  CONNECTION_LOST: "Not connected to the server right now; it reconnects on its own.",
};

function asSentence(text) {
  const trimmed = String(text || "").trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

// marshmallow's messages by field: a list of strings, or a nested object of the same.
function flatten(problems) {
  if (Array.isArray(problems)) return problems.map(flatten).join(" ");
  if (problems && typeof problems === "object")
    return Object.values(problems).map(flatten).join(" ");
  return String(problems);
}

function fieldProblems(details) {
  if (!details || typeof details !== "object") return "";
  return Object.entries(details)
    .map(([field, problems]) => asSentence(`Check ${field}: ${flatten(problems)}`))
    .join(" ");
}

// {sentence, code} for any error the console meets.
export function explain(error) {
  const code = error.code || (error.name === "ConnectionLost" ? "CONNECTION_LOST" : "ERROR");
  let sentence = SENTENCES[code] ?? asSentence(error.message);
  if (code === "VALIDATION_ERROR") sentence = fieldProblems(error.details) || sentence;
  return { sentence: sentence || "Something went wrong.", code };
}
