//! Text: the system prompt, the tickets' and the answers' sentences.

pub(crate) const SYSTEM_PROMPT: &str = "You are the customer-support assistant of Northwind Outfitters, \
an online shop for outdoor gear. Answer in the customer's language, briefly and politely. \
Use only the account and order data given below; never invent tracking numbers, dates or \
amounts. For refunds, follow the policy: items may be returned within 30 days of delivery \
in their original condition; refunds go back to the original payment method within 5 to 10 \
business days; duplicate charges are reversed at once once confirmed by the payments team. \
If a question needs a human (legal threats, safety issues, chargebacks already filed with \
the bank), say that a colleague will follow up within one business day and summarise the \
case in one line for them, prefixed with HANDOFF:.";

pub(crate) const ORDER_EN: &[&str] = &[
    "Where is my order #{n}?",
    "Hi, my order #{n} was supposed to arrive yesterday and the tracking hasn't moved in four days. Is it lost?",
    "Can you tell me when #{n} will be delivered? I need it before the weekend for a camping trip.",
    "The tracking for order {n} says delivered but there's nothing at my door or with the neighbours.",
    "Has #{n} shipped yet?",
    "I ordered a tent and two sleeping bags (order {n}); only the tent arrived. Where is the rest?",
    "order {n} status pls",
    "Why is my order #{n} stuck at customs, and do I have to pay anything to get it released?",
];

pub(crate) const ORDER_OTHER_LANGS: &[&str] = &[
    "¿Dónde está mi pedido #{n}? Lo hice hace una semana y no tengo noticias.",
    "Wo bleibt meine Bestellung {n}? Die Sendungsverfolgung zeigt seit Tagen nichts Neues.",
    "Bonjour, ma commande {n} devait arriver hier, pouvez-vous me dire où elle en est ?",
    "Olá, o meu pedido {n} ainda não chegou. Podem verificar?",
];

pub(crate) const ZH_ORDER: &[&str] = &[
    "你好，我的订单{n}什么时候能到？已经一个星期了。",
    "订单{n}的物流信息三天没有更新了，是不是丢件了？",
    "请问我的包裹{n}现在在哪里？",
    "我的订单{n}显示已签收，但我没有收到。",
];

pub(crate) const ZH_REFUND: &[&str] = &[
    "我的信用卡被扣了两次款（订单{n}），请尽快退款。",
    "订单{n}的商品有质量问题，我已经寄回去两周了，为什么还没有退款？",
    "你们拒绝了我的退款申请，但商品根本没有送到，我要投诉。",
];

pub(crate) const REFUND_STORY: &[&str] = &[
    "I ordered a down jacket three weeks ago and it arrived with a torn seam along the left sleeve.",
    "I sent it back the same day with the prepaid label, and the tracking shows you received it on the 12th.",
    "Since then I have written to you twice and got an automatic reply each time.",
    "Meanwhile my card was charged a second time for the same order, which I only noticed on my statement.",
    "Your chat agent last week promised a full refund within five business days; nothing has arrived.",
    "I have been a customer for six years and have never had a problem like this before.",
    "The seller on your marketplace now says the return was never received and refuses to refund me.",
    "I have the courier's proof of delivery with a signature and a photo of the parcel at your warehouse.",
    "If this is not resolved by Friday I will file a chargeback with my bank and leave a review.",
    "To be clear, I am asking for the duplicate charge to be reversed and the original amount refunded.",
    "I also paid 14.90 for express shipping that turned out to take nine days.",
    "Please do not send me another voucher; I want the money back on my card.",
];

pub(crate) const SENSITIVE: &[&str] = &[
    "My prescription glasses and my medical records from the clinic were in the parcel that went missing. Who has seen its contents?",
    "I am writing on behalf of my late father; I have the death certificate and his passport number if you need them to close his account.",
    "Our lawyer asks for every message you hold about my order and my address history, under data-protection law.",
    "Please delete my health data: I told your agent about my diagnosis when I asked about the heated insoles.",
    "Someone used my social security number to open an account with you and placed orders in my name.",
];

pub(crate) const KB_TITLES: &[&str] = &[
    "Returns and refunds",
    "Changing a delivery address",
    "Payment methods and duplicate charges",
    "Warranty on tents and backpacks",
    "International shipping and customs",
    "Gift cards and vouchers",
    "Product care: down and synthetic insulation",
];

pub(crate) const POLICY: &[&str] = &[
    "Items can be returned within 30 days of delivery in their original condition, with tags attached.",
    "Refunds are issued to the original payment method within 5 to 10 business days of our receiving the item.",
    "Return shipping is free for members of the Plus and Business tiers; others pay a flat fee of 4.95.",
    "Tents, backpacks and sleeping bags carry a two-year warranty against defects in materials and workmanship.",
    "The warranty does not cover normal wear, damage from misuse, or repairs made by third parties.",
    "Orders placed before 2 pm ship the same business day; express orders arrive within one to two business days.",
    "International orders may be subject to import duties and taxes, which are paid by the recipient.",
    "A delivery address can be changed until the order has been handed to the carrier.",
    "Gift cards are valid for three years and cannot be exchanged for cash.",
    "If a parcel is marked as delivered but has not arrived, please wait 48 hours and check with neighbours before contacting us.",
    "Down products should be washed at low temperature with a dedicated detergent and tumble dried with tennis balls.",
    "Duplicate charges are usually authorisations that disappear within three business days; confirmed duplicates are reversed at once.",
];

pub(crate) const ANSWERS_EN: &[&str] = &[
    "Thanks for getting in touch, and sorry for the wait.",
    "I have checked your order: it left our warehouse on Monday and is now with the carrier.",
    "The latest tracking event shows it at the regional depot, and delivery is expected tomorrow before 6 pm.",
    "I can see the duplicate charge on your card; I have asked the payments team to reverse it, which takes up to three business days.",
    "Your return was received at our warehouse and the refund of the full amount has been issued to your card.",
    "If the parcel has not arrived by Friday, reply to this message and I will send a replacement at no cost.",
    "Customs duties for your country are paid by the recipient; the carrier will contact you with the amount.",
    "I have updated the delivery address on the order, since it has not yet been handed to the carrier.",
    "The remaining items of your order ship separately from our second warehouse and have their own tracking number.",
    "Under our policy, items can be returned within 30 days of delivery in their original condition.",
    "I understand how frustrating this is, and I have added a note to your account so that the next agent sees the whole history.",
    "HANDOFF: customer disputes a refusal to refund a returned item; proof of delivery attached; wants a card refund, not a voucher.",
];

pub(crate) const ANSWERS_ZH: &[&str] = &[
    "您好，感谢您的耐心等待。",
    "我们已经查询了您的订单，包裹目前在转运中心，预计明天送达。",
    "重复扣款已确认，我们已经通知支付团队退款，预计三个工作日内到账。",
    "您寄回的商品我们已经收到，全额退款已经原路退回。",
    "如果周五前仍未收到包裹，请回复此消息，我们将免费为您补发。",
    "给您带来的不便，我们深表歉意。",
];

pub(crate) const ANSWERS_TRANSLATED: &[&str] = &[
    "Los artículos pueden devolverse en un plazo de 30 días desde la entrega, en su estado original y con las etiquetas.",
    "Die Erstattung erfolgt innerhalb von 5 bis 10 Werktagen nach Eingang der Ware auf das ursprüngliche Zahlungsmittel.",
    "Les tentes, sacs à dos et sacs de couchage sont garantis deux ans contre tout défaut de matériau ou de fabrication.",
    "As encomendas feitas antes das 14h são enviadas no mesmo dia útil.",
    "国際注文には輸入関税および税金がかかる場合があり、受取人のご負担となります。",
    "L'indirizzo di consegna può essere modificato finché l'ordine non è stato affidato al corriere.",
];

pub(crate) const ITEMS: &[&str] = &[
    "2-person tent",
    "down jacket (M)",
    "trail running shoes 42",
    "sleeping bag -5 °C",
    "headlamp",
    "merino base layer",
    "40 L backpack",
    "water filter",
    "trekking poles",
    "insulated bottle",
];
