package stripefake

// The wire shapes of the objects the fake stores. Each is rendered with
// encoding/json as Stripe's API version 2023-10-16 renders it: unset fields
// are null, expandable fields are IDs, metadata is {} when empty. Only fields
// that stripe-go v76 decodes are present (wire_test.go checks that).

type customer struct {
	ID                  string                  `json:"id"`
	Object              string                  `json:"object"`
	Address             *address                `json:"address"`
	Balance             int64                   `json:"balance"`
	Created             int64                   `json:"created"`
	Currency            *string                 `json:"currency"`
	DefaultSource       *string                 `json:"default_source"`
	Delinquent          bool                    `json:"delinquent"`
	Description         *string                 `json:"description"`
	Discount            *struct{}               `json:"discount"`
	Email               *string                 `json:"email"`
	InvoicePrefix       string                  `json:"invoice_prefix"`
	InvoiceSettings     customerInvoiceSettings `json:"invoice_settings"`
	Livemode            bool                    `json:"livemode"`
	Metadata            map[string]string       `json:"metadata"`
	Name                *string                 `json:"name"`
	NextInvoiceSequence int64                   `json:"next_invoice_sequence"`
	Phone               *string                 `json:"phone"`
	PreferredLocales    []string                `json:"preferred_locales"`
	Shipping            *struct{}               `json:"shipping"`
	TaxExempt           string                  `json:"tax_exempt"`
	TestClock           *string                 `json:"test_clock"`
}

type customerInvoiceSettings struct {
	CustomFields         []struct{} `json:"custom_fields"`
	DefaultPaymentMethod *string    `json:"default_payment_method"`
	Footer               *string    `json:"footer"`
	RenderingOptions     *struct{}  `json:"rendering_options"`
}

type address struct {
	City       *string `json:"city"`
	Country    *string `json:"country"`
	Line1      *string `json:"line1"`
	Line2      *string `json:"line2"`
	PostalCode *string `json:"postal_code"`
	State      *string `json:"state"`
}

type billingDetails struct {
	Address address `json:"address"`
	Email   *string `json:"email"`
	Name    *string `json:"name"`
	Phone   *string `json:"phone"`
}

type paymentMethod struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	BillingDetails billingDetails    `json:"billing_details"`
	Card           card              `json:"card"`
	Created        int64             `json:"created"`
	Customer       *string           `json:"customer"`
	Livemode       bool              `json:"livemode"`
	Metadata       map[string]string `json:"metadata"`
	Type           string            `json:"type"`

	// decline is what charging this card does; the zero value succeeds.
	decline decline
	// spent is set once the payment method can never be used again: it was
	// detached, or used without being attached to a customer.
	spent bool
}

type card struct {
	Brand             string         `json:"brand"`
	Checks            cardChecks     `json:"checks"`
	Country           string         `json:"country"`
	DisplayBrand      string         `json:"display_brand"`
	ExpMonth          int64          `json:"exp_month"`
	ExpYear           int64          `json:"exp_year"`
	Fingerprint       string         `json:"fingerprint"`
	Funding           string         `json:"funding"`
	Last4             string         `json:"last4"`
	Networks          cardNetworks   `json:"networks"`
	ThreeDSecureUsage threeDSecureUs `json:"three_d_secure_usage"`
	Wallet            *struct{}      `json:"wallet"`
}

type cardChecks struct {
	AddressLine1Check      *string `json:"address_line1_check"`
	AddressPostalCodeCheck *string `json:"address_postal_code_check"`
	CVCCheck               *string `json:"cvc_check"`
}

type cardNetworks struct {
	Available []string `json:"available"`
	Preferred *string  `json:"preferred"`
}

type threeDSecureUs struct {
	Supported bool `json:"supported"`
}

type paymentIntent struct {
	ID                   string            `json:"id"`
	Object               string            `json:"object"`
	Amount               int64             `json:"amount"`
	AmountCapturable     int64             `json:"amount_capturable"`
	AmountDetails        amountDetails     `json:"amount_details"`
	AmountReceived       int64             `json:"amount_received"`
	Application          *string           `json:"application"`
	ApplicationFeeAmount *int64            `json:"application_fee_amount"`
	CanceledAt           *int64            `json:"canceled_at"`
	CancellationReason   *string           `json:"cancellation_reason"`
	CaptureMethod        string            `json:"capture_method"`
	ClientSecret         string            `json:"client_secret"`
	ConfirmationMethod   string            `json:"confirmation_method"`
	Created              int64             `json:"created"`
	Currency             string            `json:"currency"`
	Customer             *string           `json:"customer"`
	Description          *string           `json:"description"`
	Invoice              *string           `json:"invoice"`
	LastPaymentError     *errorBody        `json:"last_payment_error"`
	LatestCharge         *string           `json:"latest_charge"`
	Livemode             bool              `json:"livemode"`
	Metadata             map[string]string `json:"metadata"`
	NextAction           *nextAction       `json:"next_action"`
	OnBehalfOf           *string           `json:"on_behalf_of"`
	PaymentMethod        *string           `json:"payment_method"`
	PaymentMethodTypes   []string          `json:"payment_method_types"`
	Processing           *struct{}         `json:"processing"`
	ReceiptEmail         *string           `json:"receipt_email"`
	Review               *string           `json:"review"`
	SetupFutureUsage     *string           `json:"setup_future_usage"`
	Shipping             *struct{}         `json:"shipping"`
	Source               *string           `json:"source"`
	StatementDescriptor  *string           `json:"statement_descriptor"`
	StatementSuffix      *string           `json:"statement_descriptor_suffix"`
	Status               string            `json:"status"`
	TransferData         *struct{}         `json:"transfer_data"`
	TransferGroup        *string           `json:"transfer_group"`

	seq int64
}

type amountDetails struct {
	Tip struct{} `json:"tip"`
}

// nextAction is what an on-session PaymentIntent needing 3D Secure asks of
// Stripe.js. stripe-go v76 decodes use_stripe_sdk as an empty struct.
type nextAction struct {
	Type         string   `json:"type"`
	UseStripeSDK struct{} `json:"use_stripe_sdk"`
}

type charge struct {
	ID                            string               `json:"id"`
	Object                        string               `json:"object"`
	Amount                        int64                `json:"amount"`
	AmountCaptured                int64                `json:"amount_captured"`
	AmountRefunded                int64                `json:"amount_refunded"`
	Application                   *string              `json:"application"`
	ApplicationFee                *string              `json:"application_fee"`
	ApplicationFeeAmount          *int64               `json:"application_fee_amount"`
	BalanceTransaction            *string              `json:"balance_transaction"`
	BillingDetails                billingDetails       `json:"billing_details"`
	CalculatedStatementDescriptor string               `json:"calculated_statement_descriptor"`
	Captured                      bool                 `json:"captured"`
	Created                       int64                `json:"created"`
	Currency                      string               `json:"currency"`
	Customer                      *string              `json:"customer"`
	Description                   *string              `json:"description"`
	Disputed                      bool                 `json:"disputed"`
	FailureBalanceTransaction     *string              `json:"failure_balance_transaction"`
	FailureCode                   *string              `json:"failure_code"`
	FailureMessage                *string              `json:"failure_message"`
	FraudDetails                  struct{}             `json:"fraud_details"`
	Invoice                       *string              `json:"invoice"`
	Livemode                      bool                 `json:"livemode"`
	Metadata                      map[string]string    `json:"metadata"`
	OnBehalfOf                    *string              `json:"on_behalf_of"`
	Outcome                       chargeOutcome        `json:"outcome"`
	Paid                          bool                 `json:"paid"`
	PaymentIntent                 *string              `json:"payment_intent"`
	PaymentMethod                 *string              `json:"payment_method"`
	PaymentMethodDetails          paymentMethodDetails `json:"payment_method_details"`
	ReceiptEmail                  *string              `json:"receipt_email"`
	ReceiptNumber                 *string              `json:"receipt_number"`
	ReceiptURL                    *string              `json:"receipt_url"`
	Refunded                      bool                 `json:"refunded"`
	Review                        *string              `json:"review"`
	Shipping                      *struct{}            `json:"shipping"`
	SourceTransfer                *string              `json:"source_transfer"`
	StatementDescriptor           *string              `json:"statement_descriptor"`
	StatementSuffix               *string              `json:"statement_descriptor_suffix"`
	Status                        string               `json:"status"`
	TransferData                  *struct{}            `json:"transfer_data"`
	TransferGroup                 *string              `json:"transfer_group"`
}

type chargeOutcome struct {
	NetworkStatus string  `json:"network_status"`
	Reason        *string `json:"reason"`
	RiskLevel     string  `json:"risk_level"`
	RiskScore     int64   `json:"risk_score"`
	SellerMessage string  `json:"seller_message"`
	Type          string  `json:"type"`
}

type paymentMethodDetails struct {
	Card chargeCard `json:"card"`
	Type string     `json:"type"`
}

type chargeCard struct {
	Brand       string     `json:"brand"`
	Checks      cardChecks `json:"checks"`
	Country     string     `json:"country"`
	ExpMonth    int64      `json:"exp_month"`
	ExpYear     int64      `json:"exp_year"`
	Fingerprint string     `json:"fingerprint"`
	Funding     string     `json:"funding"`
	Last4       string     `json:"last4"`
	Network     string     `json:"network"`
}

type refund struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	BalanceTransaction *string           `json:"balance_transaction"`
	Charge             *string           `json:"charge"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	Metadata           map[string]string `json:"metadata"`
	PaymentIntent      *string           `json:"payment_intent"`
	Reason             *string           `json:"reason"`
	ReceiptNumber      *string           `json:"receipt_number"`
	SourceTransferRev  *string           `json:"source_transfer_reversal"`
	Status             string            `json:"status"`
	TransferReversal   *string           `json:"transfer_reversal"`
}

type period struct {
	End   int64 `json:"end"`
	Start int64 `json:"start"`
}

type invoiceItem struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Amount            int64             `json:"amount"`
	Currency          string            `json:"currency"`
	Customer          string            `json:"customer"`
	Date              int64             `json:"date"`
	Description       *string           `json:"description"`
	Discountable      bool              `json:"discountable"`
	Discounts         []string          `json:"discounts"`
	Invoice           *string           `json:"invoice"`
	Livemode          bool              `json:"livemode"`
	Metadata          map[string]string `json:"metadata"`
	Period            period            `json:"period"`
	Price             *struct{}         `json:"price"`
	Proration         bool              `json:"proration"`
	Quantity          int64             `json:"quantity"`
	Subscription      *string           `json:"subscription"`
	TaxRates          []struct{}        `json:"tax_rates"`
	TestClock         *string           `json:"test_clock"`
	UnitAmount        int64             `json:"unit_amount"`
	UnitAmountDecimal string            `json:"unit_amount_decimal"`

	seq int64
}

type lineItem struct {
	ID                     string            `json:"id"`
	Object                 string            `json:"object"`
	Amount                 int64             `json:"amount"`
	AmountExcludingTax     int64             `json:"amount_excluding_tax"`
	Currency               string            `json:"currency"`
	Description            *string           `json:"description"`
	DiscountAmounts        []struct{}        `json:"discount_amounts"`
	Discountable           bool              `json:"discountable"`
	Discounts              []string          `json:"discounts"`
	InvoiceItem            string            `json:"invoice_item"`
	Livemode               bool              `json:"livemode"`
	Metadata               map[string]string `json:"metadata"`
	Period                 period            `json:"period"`
	Price                  *struct{}         `json:"price"`
	Proration              bool              `json:"proration"`
	Quantity               int64             `json:"quantity"`
	TaxAmounts             []struct{}        `json:"tax_amounts"`
	TaxRates               []struct{}        `json:"tax_rates"`
	Type                   string            `json:"type"`
	UnitAmountExcludingTax string            `json:"unit_amount_excluding_tax"`
}

type invoice struct {
	ID                   string            `json:"id"`
	Object               string            `json:"object"`
	AccountCountry       string            `json:"account_country"`
	AccountName          *string           `json:"account_name"`
	AmountDue            int64             `json:"amount_due"`
	AmountPaid           int64             `json:"amount_paid"`
	AmountRemaining      int64             `json:"amount_remaining"`
	AmountShipping       int64             `json:"amount_shipping"`
	Application          *string           `json:"application"`
	AttemptCount         int64             `json:"attempt_count"`
	Attempted            bool              `json:"attempted"`
	AutoAdvance          bool              `json:"auto_advance"`
	AutomaticTax         automaticTax      `json:"automatic_tax"`
	BillingReason        string            `json:"billing_reason"`
	Charge               *string           `json:"charge"`
	CollectionMethod     string            `json:"collection_method"`
	Created              int64             `json:"created"`
	Currency             string            `json:"currency"`
	Customer             string            `json:"customer"`
	CustomerEmail        *string           `json:"customer_email"`
	CustomerName         *string           `json:"customer_name"`
	DefaultPaymentMethod *string           `json:"default_payment_method"`
	Description          *string           `json:"description"`
	Discounts            []string          `json:"discounts"`
	DueDate              *int64            `json:"due_date"`
	EffectiveAt          *int64            `json:"effective_at"`
	EndingBalance        *int64            `json:"ending_balance"`
	HostedInvoiceURL     *string           `json:"hosted_invoice_url"`
	InvoicePDF           *string           `json:"invoice_pdf"`
	Lines                list[*lineItem]   `json:"lines"`
	Livemode             bool              `json:"livemode"`
	Metadata             map[string]string `json:"metadata"`
	NextPaymentAttempt   *int64            `json:"next_payment_attempt"`
	Number               *string           `json:"number"`
	Paid                 bool              `json:"paid"`
	PaidOutOfBand        bool              `json:"paid_out_of_band"`
	PaymentIntent        *string           `json:"payment_intent"`
	PeriodEnd            int64             `json:"period_end"`
	PeriodStart          int64             `json:"period_start"`
	StartingBalance      int64             `json:"starting_balance"`
	Status               string            `json:"status"`
	StatusTransitions    statusTransitions `json:"status_transitions"`
	Subscription         *string           `json:"subscription"`
	Subtotal             int64             `json:"subtotal"`
	SubtotalExcludingTax int64             `json:"subtotal_excluding_tax"`
	Tax                  *int64            `json:"tax"`
	Total                int64             `json:"total"`
	TotalExcludingTax    int64             `json:"total_excluding_tax"`
	WebhooksDeliveredAt  *int64            `json:"webhooks_delivered_at"`
}

type automaticTax struct {
	Enabled bool    `json:"enabled"`
	Status  *string `json:"status"`
}

type statusTransitions struct {
	FinalizedAt           *int64 `json:"finalized_at"`
	MarkedUncollectibleAt *int64 `json:"marked_uncollectible_at"`
	PaidAt                *int64 `json:"paid_at"`
	VoidedAt              *int64 `json:"voided_at"`
}

// list is Stripe's list object.
type list[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
	URL     string `json:"url"`
}

// optional returns nil for "" so that an unset string renders as null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ptr[T any](v T) *T {
	return &v
}
