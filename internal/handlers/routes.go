package handlers

import (
	"voucherconsole/internal/models"
)

// Role sets used by the route table. A manager may do all an operator may.
var (
	operators = []models.Role{models.RoleOperator, models.RoleManager}
	readers   = []models.Role{models.RoleOperator, models.RoleManager, models.RoleSupport}
)

// routes is the one route table, grouped by who may use each route. A route
// registered outside these groups has no rule and is refused.
func (s *Server) routes() {

	anyone := s.group(public)
	anyone.GET("/healthz", s.healthz)
	anyone.GET("/readyz", s.readyz)
	anyone.GET("/metrics", s.metrics)          // token or own listener: server.go
	anyone.GET("/static/*file", s.staticAsset) // static.go
	anyone.GET("/login", s.loginPage)
	anyone.POST("/login", s.login)
	anyone.POST("/language", s.setLanguage)
	anyone.GET("/", s.home) // sends anonymous visitors to sign in
	// The sign-in's second step (twofactor.go): before it passes nobody is
	// signed in, so the handlers check the password step themselves.
	anyone.GET("/login/two-factor", s.secondStepPage)
	anyone.POST("/login/two-factor", s.secondStepVerify)
	anyone.POST("/login/two-factor/cancel", s.secondStepCancel)

	users := s.group(signedIn)
	users.POST("/logout", s.logout)
	users.GET("/account", s.accountPage)
	users.GET("/account/password", s.passwordPage)
	users.POST("/account/password", s.changePassword)
	users.POST("/account/sessions/:id/end", s.endOwnSession) // account.go; :id "others" ends all but this one
	users.GET("/alerts", s.alertsPage)                       // alerts.go: each sees the alerts meant for their roles
	users.POST("/alerts/read", s.alertsMarkRead)
	users.GET("/account/two-factor", s.twoFactorPage)
	users.POST("/account/two-factor", s.twoFactorConfirm)
	users.GET("/account/two-factor/qr.png", s.twoFactorQR)

	readersOnly := s.group(roles(readers...))
	readersOnly.GET("/stocks", s.stockList)
	readersOnly.GET("/stocks/:id", s.stockPage)

	ops := s.group(roles(operators...))
	ops.GET("/stocks/new", s.stockNewPage)
	ops.POST("/stocks/new", s.stockCreate)
	ops.GET("/stocks/register", s.stockRegisterPage)
	ops.POST("/stocks/register", s.stockRegister)
	ops.POST("/stocks/:id/refresh", s.stockRefresh)
	ops.POST("/stocks/:id/threshold", s.stockThreshold) // alerts.go
	ops.GET("/stocks/:id/deactivate", s.deactivatePage) // deactivate.go
	ops.POST("/stocks/:id/deactivate", s.deactivate)
	ops.GET("/presend", s.presendPage) // presend.go
	ops.POST("/presend", s.presendIssue)
	ops.GET("/presend/:id", s.presendToken)

	// Code uploads (uploads.go): operators upload, start, cancel and resume;
	// readers follow them and download the report.
	readersOnly.GET("/uploads/:id", s.uploadPage)
	readersOnly.GET("/uploads/:id/progress", s.uploadProgress)
	ops.GET("/uploads/:id/report.csv", s.uploadReport) // codes: operators and managers only; support sees counts
	ops.GET("/uploads/:id/file", s.uploadFile)
	ops.GET("/stocks/:id/uploads/new", s.uploadNewPage)
	ops.POST("/stocks/:id/uploads", s.uploadCreate)
	ops.POST("/uploads/:id/start", s.uploadStart)
	ops.POST("/uploads/:id/abandon", s.uploadAbandon)
	ops.POST("/uploads/:id/cancel", s.uploadCancel)
	ops.POST("/uploads/:id/resume", s.uploadResume)

	// Approvals (approvals.go): operators follow and withdraw their own
	// requests; managers see all and decide them, never their own (the
	// service refuses the requester).
	ops.GET("/approvals", s.approvalsPage)
	ops.GET("/approvals/:id", s.approvalPage)
	ops.POST("/approvals/:id/withdraw", s.approvalWithdraw)

	managers := s.group(roles(models.RoleManager))
	managers.POST("/approvals/:id/approve", s.approvalApprove)
	managers.POST("/approvals/:id/reject", s.approvalReject)
	managers.GET("/audit", s.auditPage)
	managers.GET("/audit/export.csv", s.auditExport)
	managers.GET("/audit/verify", s.auditVerify)
	managers.POST("/audit/verify", s.auditVerifyStart)

	admins := s.group(roles(models.RoleAdmin))
	admins.GET("/admin/wxpay", s.adminWxPayPage) // admin_wxpay.go
	admins.POST("/admin/wxpay/test", s.adminWxPayTest)
	admins.GET("/admin/users", s.adminUsersPage)
	admins.GET("/admin/users/new", s.adminUserNewPage)
	admins.GET("/admin/users/locks", s.adminLocksPage) // admin_locks.go: sign-in locks, lifted by an admin
	admins.POST("/admin/users/locks/lift", s.adminLiftLock)
	admins.POST("/admin/users", s.adminUserAdd)
	admins.GET("/admin/users/:id", s.adminUserPage)
	admins.POST("/admin/users/:id/roles", s.adminSetRoles)
	admins.POST("/admin/users/:id/disable", s.adminUserDisable)
	admins.POST("/admin/users/:id/enable", s.adminUserEnable)
	admins.POST("/admin/users/:id/reset-password", s.adminResetPassword)
	admins.GET("/admin/approvals", s.approvalPolicyPage)
	admins.POST("/admin/approvals", s.approvalPolicySet)
	admins.GET("/admin/two-factor", s.adminTwoFactorPage)
	admins.POST("/admin/two-factor", s.adminSetTwoFactorRoles)
	admins.POST("/admin/two-factor/reset", s.adminResetTwoFactor)
}
