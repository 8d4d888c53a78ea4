// The one JSON API helper of the page: same-origin fetch, JSON in and out, readable errors.

/** Call the JSON API; throws an Error whose message is the API's readable error.message
 *  (with .code, .status and .details from the error object). */
export async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new Error("the lab server cannot be reached");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.error?.message || `${method} ${path} answered ${response.status}`);
    error.code = data?.error?.code;
    error.status = response.status;
    error.details = data?.error || {};
    throw error;
  }
  return data;
}

/** One line for an API error: the broker's reply code and name once, its text, then what to do
 *  ("404 NOT_FOUND: no exchange 'x' in vhost '/'. Declare the exchange first, or check its name."). */
export function errorText(error) {
  if (!error) return "";
  const details = error.details || {};
  const code = details.reply_code ? `${details.reply_code} ${error.code}` : error.code;
  const head = code ? `${code}: ${error.message}` : error.message || String(error);
  if (!details.hint) return head;
  return `${head}. ${details.hint[0].toUpperCase()}${details.hint.slice(1)}.`;
}

/** Show an API error in `node` (its errorText), or hide `node` when there is none. */
export function showError(node, error) {
  node.hidden = !error;
  node.textContent = error ? errorText(error) : "";
}
