const app = getApp()

Page({
  data: { openid: '', userId: '', welcome: '', sessionInfo: '', phone: '', error: '' },

  async onShow() {
    try {
      await app.auth.ensureFreshSession()
      const session = await app.auth.request({ path: '/session' })
      const login = app.auth.lastLogin()
      // The bound phone number, kept on the account by an earlier POST /phone.
      const account = await app.auth.account()
      this.setData({
        openid: session.openid,
        userId: session.userId,
        welcome: login && login.newUser ? 'Welcome! This is your first visit.' : '',
        sessionInfo: `valid, ${session.expiresIn}s left`,
        phone: account.phoneNumber || '',
        error: '',
      })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  async onGetPhoneNumber(event) {
    try {
      const phone = await app.auth.getPhoneNumber(event)
      this.setData({ phone: phone.phoneNumber, error: '' })
    } catch (err) {
      // fetchAgain: the session was renewed or the phone code was spent; the user
      // must tap the button again.
      const message = err.fetchAgain ? 'Please tap the button again.' : err.message
      this.setData({ error: message })
    }
  },

  // GET /session?verify=wechat: the server asks WeChat whether our session_key
  // is still the user's; if not, the client logs in again.
  async onVerify() {
    try {
      const session = await app.auth.verifySession()
      this.setData({ openid: session.openid, sessionInfo: `verified, ${session.expiresIn}s left`, error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  // GET /me through the wxauth authorizer, as any of the team's own routes would
  // be called: a refused token means one more login, then the call again.
  async onWhoAmI() {
    try {
      const me = await app.auth.callApi({ path: '/me' })
      this.setData({ openid: me.openid, sessionInfo: 'the authorizer knows us', error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  onAccount() {
    wx.navigateTo({ url: '/pages/account/account' })
  },

  async onLogout() {
    try {
      await app.auth.logout()
      this.setData({ openid: '', sessionInfo: 'logged out', phone: '', error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },
})
