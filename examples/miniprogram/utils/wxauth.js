// wxauth client for WeChat mini-programs: wx.login -> POST /login, the token and
// the refresh token in storage, `Authorization: Bearer` on every call; when the
// server says the session is gone, POST /refresh first (no wx.login, which is
// rate-limited and replaces the session_key), and wx.login only if that fails.
// The refresh token is never shown or logged. Plain CommonJS, as the WeChat
// devtools expect.
//
//   const { createClient } = require('./utils/wxauth')
//   const auth = createClient({
//     baseUrl: 'https://<api-id>.execute-api.<region>.amazonaws.com',
//     // Which of the server's apps this is (WECHAT_APPS): needed when it serves
//     // several; absent, the server's default app.
//     appid: wx.getAccountInfoSync().miniProgram.appId,
//   })
//   const { newUser } = await auth.login()      // newUser: the first login of this user
//   const session = await auth.request({ path: '/session' })
//   const account = await auth.account()         // userId, the bound phone number
//   await auth.deleteAccount()                   // 注销: the server forgets the user
//   // The team's own API behind the wxauth authorizer:
//   const orders = await auth.callApi({ path: '/orders' })

const TOKEN_KEY = 'wxauth_token'
const REFRESH_KEY = 'wxauth_refresh'

class WxAuthError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`)
    this.name = 'WxAuthError'
    this.status = status
    this.code = code
  }
}

// What a failed call means for the client. Kept pure so it can be tested alone.
//   relogin: the session is gone or its session_key changed; log in again.
//   retry:   the same request may be sent again after logging in.
//   wait:    seconds to wait before retrying (429, 503).
function classifyError(status, body, headers) {
  const code = body && body.error
  const retryAfter = Number((headers && (headers['Retry-After'] || headers['retry-after'])) || 0)
  switch (code) {
    case 'unauthorized':
      return { relogin: true, retry: true }
    // The session_key the data was made with is not the session's: a later
    // wx.login refreshed it. Log in again; the data itself must be fetched anew.
    case 'decrypt_failed':
    case 'signature_mismatch':
    case 'session_key_invalid':
    // A session renewed by POST /refresh after its login's 10 minutes has no
    // session_key: only wx.login gives one, and the data must be made anew.
    case 'session_key_expired':
      return { relogin: true, retry: false, needsWxLogin: true }
    // Inside request() only /phone's code flow can answer this (login() has its
    // own handling): the phone code was used or expired, the session is fine.
    // The user must tap the button again for a new code.
    case 'invalid_code':
      return { relogin: false, retry: false, fetchAgain: true }
    // The operator disabled the account, WeChat's risk rank refused the
    // sign-up, the server does not serve this appid, or the route is not for
    // this kind of app: logging in again cannot help.
    case 'account_disabled':
    case 'risk_rejected':
    case 'unknown_app':
    case 'unsupported_for_app':
      return { relogin: false, retry: false }
    case 'rate_limited':
    case 'upstream_unavailable':
      return { relogin: false, retry: false, wait: retryAfter || 1 }
    default:
      return { relogin: false, retry: false }
  }
}

// What the login log keeps of the device (POST /login's optional `device`):
// these fields of wx.getDeviceInfo and wx.getAppBaseInfo, strings of at most 64
// characters. Where the base library lacks those calls, no device is sent.
const DEVICE_FIELDS = ['brand', 'model', 'system', 'platform', 'SDKVersion', 'version', 'language']

function deviceInfo(wx) {
  const sources = ['getDeviceInfo', 'getAppBaseInfo']
    .filter((name) => typeof wx[name] === 'function')
    .map((name) => wx[name]() || {})
  if (sources.length === 0) return undefined
  const info = Object.assign({}, ...sources)
  const device = {}
  for (const field of DEVICE_FIELDS) {
    if (typeof info[field] === 'string') device[field] = info[field].slice(0, 64)
  }
  return device
}

function promisify(wx, name, options) {
  return new Promise((resolve, reject) => {
    wx[name](Object.assign({}, options, { success: resolve, fail: reject }))
  })
}

// apiBaseUrl: where the team's own APIs behind the wxauth authorizer live
// (callApi), when not on the wxauth API itself.
function createClient({ baseUrl, apiBaseUrl, appid, wx: wxApi, storageKey = TOKEN_KEY, refreshKey = REFRESH_KEY } = {}) {
  const wx = wxApi || globalThis.wx
  if (!baseUrl) throw new Error('wxauth: baseUrl is required')
  const base = baseUrl.replace(/\/+$/, '')
  const apiBase = (apiBaseUrl || baseUrl).replace(/\/+$/, '')
  let loggingIn = null
  let renewing = null
  // The newest login's answer, without its token: userId, newUser, openid.
  let lastLogin = null

  function send({ path, method = 'GET', data, token, origin = base }) {
    const header = { 'content-type': 'application/json' }
    if (token) header.Authorization = `Bearer ${token}`
    return promisify(wx, 'request', {
      url: origin + path,
      method,
      header,
      // JSON, never form-encoded: a form encoder turns '+' in base64 into a space.
      data: data === undefined ? undefined : JSON.stringify(data),
      dataType: 'json',
    }).then((res) => ({ status: res.statusCode, body: res.data, headers: res.header || {} }))
  }

  function token() {
    return wx.getStorageSync(storageKey) || ''
  }

  // One login at a time: concurrent 401s share it instead of each calling
  // wx.login (every wx.login refreshes the session_key and breaks the others).
  function login() {
    if (!loggingIn) {
      loggingIn = (async () => {
        for (let attempt = 0; attempt < 2; attempt++) {
          const { code } = await promisify(wx, 'login', {})
          const device = deviceInfo(wx)
          const data = { code }
          if (appid) data.appid = appid
          if (device) data.device = device
          const res = await send({ path: '/login', method: 'POST', data })
          if (res.status === 200) {
            keep(res.body)
            const { token: _token, refreshToken: _refresh, ...who } = res.body
            lastLogin = who
            return who
          }
          const body = res.body || {}
          // A code is single-use; one fresh code is worth a try.
          if (body.error !== 'invalid_code') throw new WxAuthError(res.status, body.error, body.message)
        }
        throw new WxAuthError(401, 'invalid_code', 'wx.login gave two codes WeChat refused')
      })().finally(() => {
        loggingIn = null
      })
    }
    return loggingIn
  }

  // Stores a login or refresh answer's tokens.
  function keep(body) {
    wx.setStorageSync(storageKey, body.token)
    if (body.refreshToken) wx.setStorageSync(refreshKey, body.refreshToken)
    else wx.removeStorageSync(refreshKey)
  }

  function forget() {
    wx.removeStorageSync(storageKey)
    wx.removeStorageSync(refreshKey)
  }

  // A new session without WeChat (POST /refresh), else a login. One at a time:
  // concurrent 401s share it, so a refresh token is sent once, not raced.
  function renew() {
    if (!renewing) {
      renewing = (async () => {
        const refreshToken = wx.getStorageSync(refreshKey)
        if (refreshToken) {
          const res = await send({ path: '/refresh', method: 'POST', data: { refreshToken } })
          if (res.status === 200) {
            keep(res.body)
            return res.body
          }
          wx.removeStorageSync(refreshKey)
          const body = res.body || {}
          // A disabled account cannot log in either; anything else: wx.login.
          if (body.error === 'account_disabled') throw new WxAuthError(res.status, body.error, body.message)
        }
        return login()
      })().finally(() => {
        renewing = null
      })
    }
    return renewing
  }

  // Ends the session on the server (DELETE /session: its refresh token ends
  // with it), then forgets both tokens, even if the server cannot be reached.
  async function logout() {
    const current = token()
    forget()
    if (!current) return
    const res = await send({ path: '/session', method: 'DELETE', token: current })
    if (res.status !== 204 && res.status !== 401) {
      const body = res.body || {}
      throw new WxAuthError(res.status, body.error, body.message)
    }
  }

  // The user's account (GET /account): userId, createdAt, lastLoginAt, and the
  // phone number once POST /phone bound it.
  function account() {
    return request({ path: '/account' })
  }

  // 注销: deletes the account and everything the server kept for it (DELETE
  // /account); every token of the user is refused from then on. The local token
  // goes too, so the next screen starts logged out; a later login creates a new
  // account. Needs a live session: the user is logged in first if need be.
  async function deleteAccount() {
    await request({ path: '/account', method: 'DELETE' })
    forget()
  }

  // Sends an authenticated request; logs in first if there is no token, and
  // renews the session once (refresh, else login) if the server refuses it.
  async function request({ path, method = 'GET', data }) {
    if (!token()) await login()
    let res = await send({ path, method, data, token: token() })
    if (res.status >= 200 && res.status < 300) return res.body
    let verdict = classifyError(res.status, res.body, res.headers)
    if (verdict.relogin) {
      await (verdict.needsWxLogin ? login() : renew())
      if (verdict.retry) {
        res = await send({ path, method, data, token: token() })
        if (res.status >= 200 && res.status < 300) return res.body
        verdict = classifyError(res.status, res.body, res.headers)
      }
    }
    const body = res.body || {}
    const err = new WxAuthError(res.status, body.error, body.message)
    if (verdict.wait) err.retryAfter = verdict.wait
    err.fetchAgain = Boolean(verdict.fetchAgain) || (verdict.relogin && !verdict.retry)
    throw err
  }

  // Calls a route of the team's own API behind the wxauth authorizer. API Gateway
  // answers a refused token itself, without our error body: 401 when no token
  // reached it, 403 when the authorizer said no (logged out, expired, replaced by
  // a login elsewhere). Either way: log in once more and send it again; a second
  // refusal is thrown, as is every other error.
  async function callApi({ path, method = 'GET', data }) {
    if (!token()) await login()
    let res = await send({ path, method, data, token: token(), origin: apiBase })
    if (res.status === 401 || res.status === 403) {
      await renew()
      res = await send({ path, method, data, token: token(), origin: apiBase })
    }
    if (res.status >= 200 && res.status < 300) return res.body
    const body = res.body || {}
    throw new WxAuthError(res.status, body.error, body.message)
  }

  // Makes sure WeChat still holds our session_key before the user taps a button
  // whose data the server must decrypt; a stale key would make it fail with 422.
  async function ensureFreshSession() {
    try {
      await promisify(wx, 'checkSession', {})
      if (!token()) await login()
    } catch (_) {
      await login()
    }
  }

  // Asks the server to check with WeChat (GET /session?verify=wechat) that our
  // session_key is still the user's. If WeChat dropped it, the server deletes
  // the session and this logs in again; returns the (new) session.
  async function verifySession() {
    if (!token()) await login()
    const res = await send({ path: '/session?verify=wechat', token: token() })
    if (res.status === 200) return res.body
    const body = res.body || {}
    if (body.error === 'session_key_invalid' || body.error === 'session_key_expired' || body.error === 'unauthorized') {
      await login()
      return request({ path: '/session' })
    }
    throw new WxAuthError(res.status, body.error, body.message)
  }

  // Handler for <button open-type="getPhoneNumber" bindgetphonenumber="...">.
  // Sends the code when the base library gives one (2.21.2+), else the ciphertext.
  async function getPhoneNumber(event) {
    const detail = (event && event.detail) || {}
    if (detail.errMsg && !/:ok$/.test(detail.errMsg)) {
      throw new WxAuthError(0, 'user_denied', detail.errMsg)
    }
    const data = detail.code
      ? { code: detail.code }
      : { encryptedData: detail.encryptedData, iv: detail.iv }
    return request({ path: '/phone', method: 'POST', data })
  }

  return {
    login,
    renew,
    logout,
    request,
    callApi,
    ensureFreshSession,
    verifySession,
    getPhoneNumber,
    account,
    deleteAccount,
    token,
    // The newest login of this client, if any: show a first-login welcome when
    // newUser is true.
    lastLogin: () => lastLogin,
  }
}

module.exports = { createClient, classifyError, deviceInfo, WxAuthError, TOKEN_KEY, REFRESH_KEY }
