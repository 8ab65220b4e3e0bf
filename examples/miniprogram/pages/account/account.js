// The user's account: what the server keeps, and 注销 (account deletion), which
// PIPL art. 47 and WeChat's platform rules ask every mini-program with accounts
// to offer.
const app = getApp()

Page({
  data: { userId: '', phone: '', since: '', deleted: false, error: '' },

  async onShow() {
    try {
      const account = await app.auth.account()
      this.setData({
        userId: account.userId,
        phone: account.phoneNumber || '(none bound)',
        since: new Date(account.createdAt * 1000).toLocaleDateString(),
        error: '',
      })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  async onDelete() {
    const { confirm } = await new Promise((resolve) =>
      wx.showModal({
        title: 'Delete your account?',
        content: 'Your account, your sessions and your phone number are deleted at once. This cannot be undone.',
        confirmText: 'Delete',
        confirmColor: '#c00',
        success: resolve,
        fail: () => resolve({ confirm: false }),
      }),
    )
    if (!confirm) return
    try {
      // The server deletes everything; the client forgets its token.
      await app.auth.deleteAccount()
      this.setData({ deleted: true, userId: '', phone: '', since: '', error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },
})
