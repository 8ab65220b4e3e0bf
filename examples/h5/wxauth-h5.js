// wxauth from an official account's H5 page (an `oauth` app of WECHAT_APPS):
// WeChat's OAuth redirect gives the page a code, the page exchanges it with
// POST /login {code, appid}, and keeps wxauth's own token (never WeChat's).
//
//   window.WXAUTH_H5 = {
//     apiBase: 'https://auth.example.cn',   // the wxauth API ('' for this origin)
//     appid: 'wx…',                         // the official account's appid, listed as appid:oauth
//     authorizeUrl: 'https://open.weixin.qq.com/connect/oauth2/authorize',
//     scope: 'snsapi_userinfo',             // snsapi_base: no consent page, and no unionid unless bound
//   }
//
// The redirect carries a `state` the page made and checks on the way back,
// so a code someone else started cannot be slipped into this page (CSRF).

const config = Object.assign(
  {
    apiBase: '',
    authorizeUrl: 'https://open.weixin.qq.com/connect/oauth2/authorize',
    scope: 'snsapi_userinfo',
  },
  window.WXAUTH_H5,
)
const TOKEN_KEY = 'wxauth_h5_token'
const STATE_KEY = 'wxauth_h5_state'
const $ = (id) => document.getElementById(id)

async function api(path, { method = 'GET', body, token } = {}) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(config.apiBase + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const data = res.status === 204 ? null : await res.json()
  if (!res.ok) {
    const err = new Error((data && data.message) || `HTTP ${res.status}`)
    err.code = data && data.error
    throw err
  }
  return data
}

// The page's own address, without the code and state WeChat added: where
// WeChat sends the user back to.
function here() {
  const url = new URL(window.location.href)
  url.searchParams.delete('code')
  url.searchParams.delete('state')
  url.hash = ''
  return url.toString()
}

function signIn() {
  const random = new Uint8Array(16)
  crypto.getRandomValues(random)
  const state = Array.from(random, (b) => b.toString(16).padStart(2, '0')).join('')
  sessionStorage.setItem(STATE_KEY, state)
  const url = new URL(config.authorizeUrl)
  url.searchParams.set('appid', config.appid)
  url.searchParams.set('redirect_uri', here())
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('scope', config.scope)
  url.searchParams.set('state', state)
  // WeChat wants the fragment; it is not sent to any server.
  window.location.assign(`${url}#wechat_redirect`)
}

async function show(token) {
  const account = await api('/account', { token })
  const session = await api('/session', { token })
  $('user-id').textContent = account.userId
  $('appid').textContent = session.appid
  $('apps').textContent = account.apps.map((app) => app.appid).join(', ')
  $('who').hidden = false
  $('sign-in').hidden = true
  $('status').textContent = 'Signed in.'
}

function fail(err) {
  $('error').textContent = err.code ? `${err.code}: ${err.message}` : err.message
  $('error').hidden = false
}

async function main() {
  $('sign-in').addEventListener('click', signIn)
  const params = new URL(window.location.href).searchParams
  const code = params.get('code')
  if (code) {
    const expected = sessionStorage.getItem(STATE_KEY)
    sessionStorage.removeItem(STATE_KEY)
    // The code is spent once: drop it from the address either way.
    window.history.replaceState(null, '', here())
    if (!expected || params.get('state') !== expected) {
      $('status').textContent = 'Not signed in.'
      $('sign-in').hidden = false
      fail(new Error('The sign-in did not start on this page (state mismatch): sign in again.'))
      return
    }
    const login = await api('/login', { method: 'POST', body: { code, appid: config.appid } })
    sessionStorage.setItem(TOKEN_KEY, login.token)
  }
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (token) {
    try {
      await show(token)
      return
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY)
      if (err.code !== 'unauthorized') throw err
    }
  }
  $('status').textContent = 'Not signed in.'
  $('sign-in').hidden = false
}

main().catch(fail)
