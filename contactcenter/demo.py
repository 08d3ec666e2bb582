"""Load a realistic, deterministic demo data set on the first start of ``serve --demo``.

Customers with Russian and English names (some with several addresses), two
organisations, a product catalogue with two years of purchases, service
contracts (some about to expire, some lapsed), queues with inboxes on every
channel, agents with skills and languages, and a few hundred historical tickets
that went through the real intake path with the times they happened at.
Everything comes from one seeded ``random.Random``; only "today" moves.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter as Tally
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from contactcenter.accounts.models import User
from contactcenter.accounts.service import create_user, hash_password
from contactcenter.channels.base import Identity, InboundContact, ThreadHints
from contactcenter.config import Settings
from contactcenter.customers.identity import normalise_phone
from contactcenter.customers.models import (
    Contract,
    Customer,
    CustomerIdentity,
    Organisation,
    Product,
    Purchase,
)
from contactcenter.db import Database, utcnow
from contactcenter.tickets.intake import apply_contact
from contactcenter.tickets.models import DeliveryState, Inbox, Message, Queue, QueueMember, Ticket
from contactcenter.tickets.service import add_reply, assign_ticket, change_status

DEMO_PASSWORD = "demo-password-1"
DEMO_USERS: list[tuple[str, str]] = [
    ("admin@example.com", "admin"),
    ("supervisor@example.com", "supervisor"),
    ("editor@example.com", "knowledge editor"),
    ("agent@example.com", "agent, English and Russian"),
]
SEED = 20240917
CUSTOMERS, PURCHASES, CONTRACTS, TICKETS = 200, 600, 60, 300

RU_MEN = ["Иван", "Алексей", "Дмитрий", "Сергей", "Андрей", "Михаил", "Николай", "Павел",
          "Артём", "Владимир", "Егор", "Кирилл"]
RU_WOMEN = ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана",
            "Екатерина", "Юлия", "Дарья", "Ксения"]
RU_SURNAMES = ["Иванов", "Петров", "Смирнов", "Кузнецов", "Соколов", "Попов", "Лебедев",
               "Козлов", "Новиков", "Морозов", "Волков", "Соловьёв", "Васильев", "Зайцев",
               "Павлов", "Семёнов", "Голубев", "Виноградов", "Богданов", "Фёдоров"]
EN_FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
            "David", "Emily", "Daniel", "Sarah", "Thomas", "Laura", "Chris", "Olivia"]
EN_LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
           "Anderson", "Taylor", "Moore", "Clark", "Lewis", "Walker", "Hall", "Young"]
LATIN = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                 ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n",
                  "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "",
                  "e", "yu", "ya"], strict=True))
US_AREAS = ["202", "212", "312", "415", "617", "646", "718", "206", "305", "512"]

PRODUCTS = [  # sku, name, category, price, margin
    ("PLAN-BASIC", "Basic plan", "plan", "19.00", "0.55"),
    ("PLAN-PRO", "Pro plan", "plan", "49.00", "0.62"),
    ("PLAN-ENT", "Enterprise plan", "plan", "199.00", "0.70"),
    ("RTR-AX1800", "Wi-Fi 6 router AX1800", "hardware", "89.00", "0.25"),
    ("RTR-MESH3", "Mesh Wi-Fi system, 3 nodes", "hardware", "299.00", "0.30"),
    ("MDM-D31", "Cable modem DOCSIS 3.1", "hardware", "129.00", "0.22"),
    ("EXT-AX", "Wi-Fi range extender", "hardware", "39.00", "0.35"),
    ("CBL-CAT6", "Cat 6 network cable, 10 m", "accessory", "12.00", "0.50"),
    ("SVC-INSTALL", "Home installation", "service", "79.00", "0.45"),
    ("SVC-INSTALL-BIZ", "Business installation", "service", "249.00", "0.40"),
    ("SVC-ONSITE", "On-site repair visit", "service", "120.00", "0.35"),
    ("ADD-STATICIP", "Static IP address", "add-on", "5.00", "0.80"),
    ("ADD-BACKUP", "Cloud backup 1 TB", "add-on", "9.00", "0.70"),
    ("SUP-STD", "Standard support contract", "support", "240.00", "0.60"),
    ("SUP-PREM", "Premium support contract", "support", "600.00", "0.65"),
    ("SUP-ENT", "Enterprise support contract", "support", "2400.00", "0.70"),
]
PRODUCT_WEIGHTS = [14, 10, 3, 9, 4, 5, 6, 6, 8, 2, 4, 5, 6, 0, 0, 0]
CONTRACT_LEVELS = [("Standard", 480, "SUP-STD"), ("Premium", 120, "SUP-PREM"),
                   ("Enterprise", 30, "SUP-ENT")]
QUEUES = [("support-en", "English support", "en", "support"),
          ("support-ru", "Поддержка на русском", "ru", "support"),
          ("billing", "Billing", None, "billing"), ("technical", "Technical support", None,
                                                      "technical")]
INBOXES = [  # name, channel, address, queue slug, language it serves (None: any)
    ("Support mailbox", "email", "support@example.com", "support-en", "en"),
    ("Поддержка (почта)", "email", "podderzhka@example.com", "support-ru", "ru"),
    ("Billing mailbox", "email", "billing@example.com", "billing", None),
    ("US hotline", "phone", "+12025550100", "technical", "en"),
    ("Горячая линия", "phone", "+74951234567", "support-ru", "ru"),
    ("SMS", "sms", "+12025550101", "support-en", None),
    ("Website chat", "chat", "website", "support-en", "en"),
    ("Чат на сайте", "chat", "website-ru", "support-ru", "ru"),
    ("Contact form", "form", "contact-form", "support-en", None),
    ("CRM integration", "api", "crm", "technical", None),
]
AGENTS = [  # email, name, languages, skills
    ("agent@example.com", "Alex Morgan", "en,ru", {"support": 4, "technical": 3}),
    ("maria.kuznetsova@example.com", "Мария Кузнецова", "ru", {"support": 5, "billing": 3}),
    ("dmitry.sokolov@example.com", "Дмитрий Соколов", "ru,en", {"technical": 5, "support": 3}),
    ("emily.carter@example.com", "Emily Carter", "en", {"support": 4, "sales": 3}),
    ("james.walker@example.com", "James Walker", "en", {"billing": 5, "support": 2}),
    ("olga.smirnova@example.com", "Ольга Смирнова", "ru", {"support": 4, "billing": 2}),
    ("sophia.turner@example.com", "Sophia Turner", "en", {"technical": 4, "support": 3}),
    ("ivan.lebedev@example.com", "Иван Лебедев", "ru", {"technical": 4}),
    ("daniel.brooks@example.com", "Daniel Brooks", "en", {"support": 3, "sales": 4}),
    ("natalia.volkova@example.com", "Наталья Волкова", "en,ru", {"billing": 4, "support": 4}),
]
TOPICS = [  # skill, (en subject, en text, en reply), (ru subject, ru text, ru reply)
    ("technical", ("Router keeps dropping Wi-Fi",
                   "My {product} loses the Wi-Fi connection several times a day.",
                   ("Please update the firmware from Settings > System and restart the "
                    "router; that fixes the drop-outs in most cases.")),
     ("Роутер теряет Wi-Fi", "Мой {product} несколько раз в день теряет соединение.",
      "Обновите, пожалуйста, прошивку в разделе «Система» и перезагрузите роутер.")),
    ("technical", ("Internet is very slow", "Speed tests show 5 Mbit/s instead of 100.",
                   "We reset your line profile; please run the speed test again."),
     ("Очень медленный интернет", "Тест скорости показывает 5 Мбит/с вместо 100.",
      "Мы сбросили профиль линии, проверьте скорость ещё раз, пожалуйста.")),
    ("billing", ("Question about my invoice", "I was charged twice for {product} this month.",
                 ("Sorry about that: the duplicate charge is refunded and will show within "
                  "5 working days.")),
     ("Вопрос по счёту", "С меня дважды списали оплату за {product} в этом месяце.",
      "Приносим извинения: повторное списание возвращено, деньги придут в течение 5 дней.")),
    ("billing", ("Change of payment card", "How do I change the card my plan is paid with?",
                 "You can change it under Account > Payment methods; I have sent you the link."),
     ("Смена карты для оплаты", "Как поменять карту, с которой оплачивается тариф?",
      "Это можно сделать в разделе «Аккаунт» > «Способы оплаты».")),
    ("support", ("Upgrade to a faster plan", "I would like to move from my plan to Pro.",
                 "Done: your plan changes to Pro from the next billing cycle."),
     ("Переход на тариф Pro", "Хочу перейти на более быстрый тариф Pro.",
      "Готово: тариф Pro начнёт действовать со следующего расчётного периода.")),
    ("support", ("Installation appointment", "Can the technician come on Saturday morning?",
                 "Booked: a technician will visit on Saturday between 9 and 12."),
     ("Запись на установку", "Может ли мастер приехать в субботу утром?",
      "Записали: мастер приедет в субботу с 9 до 12.")),
    ("support", ("Contract renewal", "My support contract ends soon. What are the options?",
                 "I have sent you the renewal offer with the Premium level for comparison."),
     ("Продление договора", "Скоро заканчивается договор на обслуживание. Какие варианты?",
      "Отправили вам предложение о продлении и сравнение с уровнем Premium.")),
    ("technical", ("Static IP not working", "The static IP address I bought is not assigned.",
                   "The address is now bound to your modem; please restart it."),
     ("Не работает статический IP", "Купленный статический IP не назначен.",
      "Адрес привязан к вашему модему, перезагрузите его, пожалуйста.")),
]
CHANNEL_WEIGHTS = {"email": 40, "phone": 15, "sms": 8, "chat": 17, "form": 10, "api": 10}


@dataclass
class _Person:
    customer: Customer
    language: str
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    chat: str | None = None


def _latin(text: str) -> str:
    return "".join(LATIN.get(ch, ch) for ch in text.lower())


def _ru_name(rng: random.Random) -> tuple[str, str]:
    surname = rng.choice(RU_SURNAMES)
    if rng.random() < 0.5:
        first = rng.choice(RU_WOMEN)
        surname += "а"
    else:
        first = rng.choice(RU_MEN)
    return f"{first} {surname}", f"{_latin(first)}.{_latin(surname)}"


def _phone(rng: random.Random, language: str, used: set[str]) -> str:
    while True:
        if language == "ru":
            raw = f"+7 9{rng.randint(10, 99)} {rng.randint(100, 999)}-{rng.randint(10, 99)}-" \
                  f"{rng.randint(10, 99)}"
        else:
            raw = f"+1 {rng.choice(US_AREAS)} 555 01{rng.randint(0, 99):02d}"
        number = normalise_phone(raw)
        if number not in used:
            used.add(number)
            return number


def _customers(session: Session, rng: random.Random, today: dt.datetime) -> list[_Person]:
    orgs = [Organisation(name="Northwind Logistics", external_id="ORG-1",
                         domain="northwind.example"),
            Organisation(name="ООО «Ромашка»", external_id="ORG-2", domain="romashka.example")]
    session.add_all(orgs)
    people: list[_Person] = []
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    for index in range(CUSTOMERS):
        language = "ru" if index % 2 else "en"
        if language == "ru":
            name, local = _ru_name(rng)
        else:
            first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            name, local = f"{first} {last}", f"{first}.{last}".lower()
        org = orgs[1 if language == "ru" else 0] if rng.random() < 0.14 else None
        customer = Customer(name=name, language=language, external_id=f"CUST-{index + 1:04d}",
                            organisation=org,
                            created_at=today - dt.timedelta(days=rng.randint(760, 1500)))
        if rng.random() < 0.2:
            customer.balance = Decimal(rng.randint(-200, 150))
        person = _Person(customer, language)
        domains = [org.domain] if org and org.domain else ["example.org", "example.net"]
        if rng.random() > 0.08:
            person.emails.append(_unique(f"{local}@{rng.choice(domains)}", used_emails))
        if rng.random() < 0.12 or not person.emails:
            person.emails.append(_unique(f"{local.split('.')[0]}{rng.randint(1, 99)}"
                                         f"@example.net", used_emails))
        if rng.random() < 0.45 or not person.emails:
            person.phones.append(_phone(rng, language, used_phones))
        if rng.random() < 0.1:
            person.chat = f"visitor-{rng.getrandbits(48):012x}"
        for kind, addresses in (("email", person.emails), ("phone", person.phones),
                                ("chat", [person.chat] if person.chat else [])):
            for address in addresses:
                customer.identities.append(CustomerIdentity(kind=kind, address=address,
                                                            verified=kind != "chat"))
        session.add(customer)
        people.append(person)
    session.flush()
    return people


def _unique(address: str, used: set[str]) -> str:
    local, domain = address.split("@")
    candidate, n = address, 1
    while candidate in used:
        n += 1
        candidate = f"{local}{n}@{domain}"
    used.add(candidate)
    return candidate


def _sales(session: Session, rng: random.Random, people: list[_Person],
           today: dt.datetime) -> tuple[int, int]:
    products = [Product(sku=sku, name=name, category=cat, price=Decimal(price),
                        margin=Decimal(margin), currency="USD")
                for sku, name, cat, price, margin in PRODUCTS]
    session.add_all(products)
    session.flush()
    by_sku = {p.sku: p for p in products}
    value: defaultdict[int, Decimal] = defaultdict(Decimal)
    buyers = rng.choices(people, weights=[rng.paretovariate(1.5) for _ in people], k=PURCHASES)
    for n, person in enumerate(buyers, start=1):
        product = rng.choices(products, weights=PRODUCT_WEIGHTS)[0]
        quantity = rng.randint(1, 3) if product.category == "accessory" else 1
        amount = product.price * quantity
        when = today - dt.timedelta(minutes=rng.randint(60, 730 * 24 * 60))
        session.add(Purchase(external_id=f"ORD-{n:05d}", customer_id=person.customer.id,
                             product_id=product.id, quantity=quantity, amount=amount,
                             currency="USD", purchased_at=when, created_at=when))
        value[person.customer.id] += amount
    expiring = lapsed = 0
    day = today.date()
    for n, person in enumerate(rng.sample(people, CONTRACTS), start=1):
        level, minutes, sku = rng.choices(CONTRACT_LEVELS, weights=[6, 3, 1])[0]
        if n <= 10:
            ends_on, expiring = day + dt.timedelta(days=rng.randint(1, 29)), expiring + 1
        elif n <= 22:
            ends_on, lapsed = day - dt.timedelta(days=rng.randint(3, 240)), lapsed + 1
        else:
            ends_on = day + dt.timedelta(days=rng.randint(45, 600))
        years = rng.choice([1, 1, 2])
        price = by_sku[sku].price * years
        session.add(Contract(external_id=f"CTR-{n:04d}", customer_id=person.customer.id,
                             product_id=by_sku[sku].id, level=level, response_minutes=minutes,
                             starts_on=ends_on - dt.timedelta(days=365 * years - 1),
                             ends_on=ends_on, value=price, currency="USD"))
        value[person.customer.id] += price
    for person in people:
        total = value[person.customer.id]
        person.customer.lifetime_value = total
        person.customer.value_tier = ("platinum" if total >= 3000 else "gold" if total >= 1000
                                      else "silver" if total >= 300 else "bronze")
    session.flush()
    return expiring, lapsed


def _staff(session: Session) -> tuple[dict[str, Inbox], dict[int, list[User]]]:
    queues = {slug: Queue(slug=slug, name=name, language=lang, skill=skill)
              for slug, name, lang, skill in QUEUES}
    session.add_all(queues.values())
    session.flush()
    inboxes: dict[str, Inbox] = {}
    for name, channel, address, slug, _lang in INBOXES:
        inbox = Inbox(name=name, channel=channel, address=address, queue_id=queues[slug].id)
        session.add(inbox)
        inboxes[address] = inbox
    digest = hash_password(DEMO_PASSWORD)  # argon2 is slow on purpose: hash once
    people = [("admin@example.com", "Ada Admin", ["admin"], True),
              ("supervisor@example.com", "Sam Supervisor", ["supervisor"], True),
              ("editor@example.com", "Kim Editor", ["knowledge_editor"], False)]
    for email, name, roles, financial in people:
        create_user(session, email, name, None, roles, languages="en,ru",
                    financial_access=financial).password_hash = digest
    members: dict[int, list[User]] = {q.id: [] for q in queues.values()}
    for email, name, languages, skills in AGENTS:
        agent = create_user(session, email, name, None, ["agent"], languages=languages,
                            skills=skills)
        agent.password_hash = digest
        for queue in queues.values():
            if queue.skill in skills and (queue.language is None
                                          or queue.language in languages.split(",")):
                session.add(QueueMember(queue_id=queue.id, user_id=agent.id))
                members[queue.id].append(agent)
    session.flush()
    return inboxes, members


def _pick_inbox(rng: random.Random, inboxes: dict[str, Inbox], channel: str, language: str,
                skill: str) -> Inbox:
    if channel == "email" and skill == "billing":
        return inboxes["billing@example.com"]
    serves = {address: lang for _name, _channel, address, _slug, lang in INBOXES}
    options = [inbox for address, inbox in inboxes.items() if inbox.channel == channel
               and serves[address] in (None, language) and address != "billing@example.com"]
    return rng.choice(options)


def _status(rng: random.Random, age_days: float) -> str:
    if age_days > 10:
        return rng.choices(["closed", "solved", "pending"], weights=[70, 26, 4])[0]
    return rng.choices(["new", "open", "pending", "on_hold", "solved"],
                       weights=[25, 30, 25, 5, 15])[0]


def _tickets(session: Session, settings: Settings, rng: random.Random, people: list[_Person],
             inboxes: dict[str, Inbox], members: dict[int, list[User]],
             now: dt.datetime) -> Tally[str]:
    statuses: Tally[str] = Tally()
    # Oldest first, so that ticket numbers grow with time as they would have.
    ages = sorted(((rng.random() ** 1.6) * 180 + 0.05 for _ in range(TICKETS)), reverse=True)
    for n, age in enumerate(ages, start=1):
        person = rng.choice(people)
        channel = rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()))[0]
        if channel in ("phone", "sms") and not person.phones:
            channel = "email"
        if channel != "phone" and channel != "sms" and not person.emails:
            channel = "phone"
        if channel in ("phone", "sms"):
            sender = Identity("phone", person.phones[0], person.customer.name)
        elif channel == "chat" and person.chat:
            sender = Identity("chat", person.chat, person.customer.name)
        else:
            sender = Identity("email", rng.choice(person.emails), person.customer.name)
        skill, en, ru = rng.choice(TOPICS)
        subject, text, reply = ru if person.language == "ru" else en
        text = text.format(product=rng.choice(["AX1800", "Mesh 3", "DOCSIS 3.1"]))
        if channel == "phone":
            text = ("Звонок: " if person.language == "ru" else "Phone call: ") + text
        inbox = _pick_inbox(rng, inboxes, channel, person.language, skill)
        opened = now - dt.timedelta(days=age)
        contact = InboundContact(
            channel=channel, external_id=f"demo-{channel}-{n:04d}", sender=sender,
            subject=subject if channel in ("email", "form", "api") else "", text=text,
            inbox_id=inbox.id, recipient=inbox.address, received_at=opened,
            thread=ThreadHints(thread_on_open_ticket=False), language=person.language)
        result = apply_contact(session, contact, settings, now=opened)
        ticket = session.get(Ticket, result.ticket_id)
        first = session.get(Message, result.message_id)
        assert ticket is not None and first is not None
        ticket.created_at = first.created_at = opened
        if rng.random() < 0.12:
            ticket.priority = rng.choice(["high", "urgent"])
        status = _status(rng, age)
        statuses[status] += 1
        if status != "new":
            _work(session, settings, rng, ticket, members, reply, status, opened, now)
        ticket.updated_at = ticket.last_activity_at
    return statuses


def _work(session: Session, settings: Settings, rng: random.Random, ticket: Ticket,
          members: dict[int, list[User]], reply: str, status: str, opened: dt.datetime,
          now: dt.datetime) -> None:
    """Assign, answer and move a ticket on, each step at a plausible past time."""
    agents = members.get(ticket.queue_id or 0) or [a for group in members.values()
                                                   for a in group]
    agent = rng.choice(agents)
    assign_ticket(session, ticket, agent.id, None)
    span = now - opened
    at = opened + min(span * 0.3, dt.timedelta(minutes=rng.randint(4, 480)))
    message = add_reply(session, ticket, agent.id, reply, now=at)
    # Demo replies count as delivered: the outbox must not send mail to invented people.
    message.delivery_state = DeliveryState.SENT
    message.delivered_at = message.created_at = at
    message.next_attempt_at = None
    if status == "open" or rng.random() < 0.3:
        at = at + min((now - at) * 0.4, dt.timedelta(minutes=rng.randint(10, 900)))
        follow = InboundContact(
            channel=ticket.channel, external_id=f"demo-{ticket.channel}-{ticket.number}-re",
            sender=Identity(*_sender_of(session, ticket)),
            text="Спасибо!" if ticket.customer.language == "ru" else "Thanks, that helped!",
            inbox_id=ticket.inbox_id, received_at=at,
            thread=ThreadHints(ticket_number=ticket.number, reply_token=ticket.reply_token))
        result = apply_contact(session, follow, settings, now=at)
        extra = session.get(Message, result.message_id)
        assert extra is not None
        extra.created_at = at
    if status in ("solved", "closed"):
        at = at + min((now - at) * 0.3, dt.timedelta(hours=rng.randint(1, 48)))
        change_status(session, ticket, "solved", agent.id, now=at)
    if status == "closed":
        change_status(session, ticket, "closed", agent.id,
                      now=at + min((now - at) * 0.5, dt.timedelta(days=4)))
    elif status in ("pending", "on_hold") and ticket.status != status:
        change_status(session, ticket, status, agent.id, now=at)


def _sender_of(session: Session, ticket: Ticket) -> tuple[str, str]:
    first = session.scalar(ticket.messages.select().order_by(Message.id).limit(1))
    assert first is not None
    kind = "phone" if first.sender.startswith("+") else "chat" if first.sender.startswith(
        "visitor-") else "email"
    return kind, first.sender


CANNED = (
    ("Greeting", "hello", "en",
     "Hello {{customer.first_name}},\n\nthank you for writing to us about ticket "
     "#{{ticket.number}}.\n\n"),
    ("Sign-off", "bye", "en", "\n\nKind regards,\n{{agent.name}}"),
    ("Refund on its way", "refund", "en",
     "Your refund has been approved and will reach your account within 5 business days."),
    ("Приветствие", "privet", "ru",
     "Здравствуйте, {{customer.first_name}}!\n\nСпасибо за обращение #{{ticket.number}}.\n\n"),
    ("Подпись", "poka", "ru", "\n\nС уважением,\n{{agent.name}}"),
    ("Возврат оформлен", "vozvrat", "ru",
     "Возврат средств одобрен, деньги поступят на счёт в течение 5 рабочих дней."),
)


def _canned(session: Session) -> None:
    from contactcenter.tickets.models import CannedResponse

    for title, shortcut, language, body in CANNED:
        session.add(CannedResponse(title=title, shortcut=shortcut, language=language, body=body))


def load_demo(db: Database, settings: Settings) -> str:
    """Load the demo data set once and return a one-paragraph summary of it.

    Does nothing and returns ``""`` when any user exists already, so a restart of
    ``serve --demo`` (or a real installation) is never touched.
    """
    now = utcnow()
    rng = random.Random(SEED)
    with db.session() as session:
        if session.scalar(select(User.id).limit(1)) is not None:
            return ""
        from contactcenter.knowledge.demo import seed_demo as seed_articles
        from contactcenter.sales.demo import seed_demo as seed_offers
        from contactcenter.sla.demo import seed_demo as seed_sla

        people = _customers(session, rng, now)
        expiring, lapsed = _sales(session, rng, people, now)
        # Catalogue, offer rules and value tiers, then SLA calendars and policies, before the
        # tickets arrive: intake then sets their deadlines and routing their priority.
        seed_offers(session, [p.customer for p in people])
        seed_sla(session)
        inboxes, members = _staff(session)
        statuses = _tickets(session, settings, rng, people, inboxes, members, now)
        _canned(session)
        session.commit()
        several = sum(1 for p in people if len(p.customer.identities) > 1)
        from contactcenter.field.demo import seed_demo as seed_field

        seed_field(session, settings, now)
        session.commit()
        # Last: it commits and indexes the articles itself.
        articles = seed_articles(session, settings)
    shown = ", ".join(f"{count} {name}" for name, count in statuses.most_common())
    return (f"Loaded the demo data set: {len(people)} customers ({several} with more than one "
            f"address) in 2 organisations, {len(PRODUCTS)} products with {PURCHASES} purchases "
            f"over two years, {CONTRACTS} service contracts ({expiring} expiring within 30 days, "
            f"{lapsed} lapsed), {len(QUEUES)} queues with {len(INBOXES)} inboxes on "
            f"{len(CHANNEL_WEIGHTS)} channels, {len(AGENTS)} agents plus an admin, a supervisor "
            f"and a knowledge editor, {len(articles)} knowledge articles in English and "
            f"Russian, SLA calendars and policies, and {TICKETS} tickets ({shown}). "
            f"Every demo user's "
            f"password is {DEMO_PASSWORD}.")
